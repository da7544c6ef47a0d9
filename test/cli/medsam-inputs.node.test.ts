// MedSAM's intensity windows in the CLI (medsam-inputs.ts) against numpy running pre_CT_MR.py's
// formulas on the same values (the numbers below): CT clipped to -160..240 HU and rescaled over the
// clipped values' min..max, MR clipped to np.percentile(nonzero, [0.5, 99.5]) with zeros kept; uint8
// truncation. Plus the --box, --slices and --window parsers.
import { describe, expect, it } from 'vitest';
import type { Volume } from '../../src/io/nifti.js';
import { parseBox, parseSliceRange, parseWindow, windowVolume } from '../../src/cli/medsam-inputs.js';

const volume = (data: number[]): Volume => ({ data: Float32Array.from(data), dims: [data.length, 1, 1], spacing: [1, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], datatype: 16, header: {} as Volume['header'] });

describe('MedSAM windows (pre_CT_MR.py)', () => {
  it('CT abdomen (40, 400), chosen automatically for values below -200', () => {
    const v = volume(Array.from({ length: 300 }, (_, i) => ((i * 53) % 2001) - 1000));
    const { grey, chosen } = windowVolume(v, 'auto');
    expect(chosen).toMatch(/^CT window abdomen \(-160\.\.240 HU\) \(chosen because the scan's minimum is -1000 HU, so CT/);
    // numpy: ((np.clip(ct, -160, 240) - min) / (max - min) * 255.0).astype(np.uint8)
    expect(Array.from(grey.subarray(14, 26))).toEqual([0, 0, 5, 38, 72, 106, 140, 174, 207, 241, 255, 255]);
    expect(grey.reduce((a, b) => a + b, 0)).toBe(36407);
  });
  it('MR: the non-zero voxels\' 0.5 / 99.5 percentiles (numpy: -19.735, 80.0), zero background kept', () => {
    const v = volume(Array.from({ length: 300 }, (_, i) => (i % 7 ? ((i * 37) % 101) - 20 : 0)));
    const { grey, chosen } = windowVolume(v, parseWindow('--window', 'mr'));
    expect(chosen).toBe("MR: clipped to the non-zero voxels' 0.5 / 99.5 percentiles -19.735..80, zero background kept");
    expect(Array.from(grey.subarray(0, 12))).toEqual([0, 93, 188, 24, 119, 214, 0, 0, 239, 76, 170, 6]);
    expect(grey.reduce((a, b) => a + b, 0)).toBe(32499);
  });
  it('parsers: boxes (MedSAM_Inference.py\'s [x0,y0,x1,y1] too), slice ranges, windows', () => {
    expect(parseBox('--box', '[95,255,190,350]')).toEqual([95, 255, 190, 350]);
    expect(parseBox('--box', '1.5, 2,3,4')).toEqual([1.5, 2, 3, 4]);
    for (const bad of ['1,2,3', '1,2,3,x', '-1,0,2,2', '5,0,4,2']) expect(() => parseBox('--box', bad)).toThrow(`--box must be x0,y0,x1,y1`);
    expect(parseSliceRange('--slices', '3-7')).toEqual([3, 7]);
    for (const bad of ['7-3', '3', '3-x', '-1-4']) expect(() => parseSliceRange('--slices', bad)).toThrow('--slices must be A-B');
    expect(parseWindow('--window', 'lung')).toEqual({ kind: 'ct', level: -600, width: 1500, name: 'lung' });
    expect(parseWindow('--window', '50,350')).toEqual({ kind: 'ct', level: 50, width: 350, name: 'level 50, width 350' });
    expect(() => parseWindow('--window', '50,0')).toThrow("--window must be abdomen, lung, bone, brain, mr, or level,width in HU like 40,400, got '50,0'");
  });
});
