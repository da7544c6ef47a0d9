// labelOverlap: Dice of a class (or the foreground) between two label maps, against counts by hand.
import { describe, expect, it } from 'vitest';
import { models } from '../../src/index.js';

describe('labelOverlap', () => {
  const predicted = [0, 1, 1, 2, 2, 0, 1, 0];
  const reference = [0, 1, 0, 2, 1, 1, 1, 0];
  it('the foreground: every value above 0', () => {
    // predicted > 0 at 1,2,3,4,6 (5); reference at 1,3,4,5,6 (5); both at 1,3,4,6 (4)
    expect(models.labelOverlap(predicted, reference)).toEqual({ dice: 0.8, predicted: 5, reference: 5, intersection: 4 });
  });
  it('one class, and null where neither map has it', () => {
    // class 1: predicted at 1,2,6; reference at 1,4,5,6; both at 1,6
    expect(models.labelOverlap(predicted, reference, 1)).toEqual({ dice: 4 / 7, predicted: 3, reference: 4, intersection: 2 });
    expect(models.labelOverlap(predicted, reference, 2).dice).toBeCloseTo(2 / 3, 12);
    expect(models.labelOverlap(predicted, reference, 3)).toEqual({ dice: null, predicted: 0, reference: 0, intersection: 0 });
    expect(models.labelOverlap([3, 0], [0, 0], 3).dice).toBe(0);
  });
  it('refuses maps of different sizes', () => {
    expect(() => models.labelOverlap([1, 2], [1])).toThrow(/differ in size/);
  });
});
