// Learning-rate schedules that set each group's `lr` from its initial lr (`base`) at every step(),
// where t counts scheduler steps (0 before the first):
//   PolyLR:   lr = base * (1 - min(t, maxSteps) / maxSteps)^power (TransUNet's schedule with
//             power 0.9, the default; torch's PolynomialLR in closed form)
//   CosineLR: t < warmupSteps: linear warmup, lr = base * (f0 + (1 - f0) * t / warmupSteps) with
//             f0 = warmupStartFactor (default 0); then, with w = warmupSteps,
//             lr = minLr + (base - minLr) * (1 + cos(pi * min(t - w, maxSteps - w) / (maxSteps - w))) / 2
import type { GroupOptions, Optimizer } from './optimizer.js';

export abstract class LRScheduler {
  lastStep = 0;
  protected readonly baseLrs: number[];

  constructor(protected readonly optimizer: Optimizer<GroupOptions>) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr);
  }

  /** The learning rate of a group with initial lr `base` at step t. */
  protected abstract lrAt(base: number, t: number): number;

  /** Sets every group's lr for the current step (subclass constructors call it once). */
  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.lrAt(this.baseLrs[i], this.lastStep)));
  }

  /** Advances one step (call after optimizer.step(), as in PyTorch) and sets the groups' lr. */
  step(): void {
    this.lastStep++;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastStep: number; baseLrs: number[] } {
    return { lastStep: this.lastStep, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(sd: { lastStep: number; baseLrs: number[] }): void {
    this.lastStep = sd.lastStep;
    sd.baseLrs.forEach((b, i) => (this.baseLrs[i] = b));
    this.apply();
  }
}

export class PolyLR extends LRScheduler {
  readonly maxSteps: number;
  readonly power: number;

  constructor(optimizer: Optimizer<GroupOptions>, options: { maxSteps: number; power?: number }) {
    super(optimizer);
    if (!(options.maxSteps > 0)) throw new Error(`PolyLR: maxSteps must be positive, got ${options.maxSteps}`);
    this.maxSteps = options.maxSteps;
    this.power = options.power ?? 0.9;
    this.apply();
  }

  protected lrAt(base: number, t: number): number {
    return base * (1 - Math.min(t, this.maxSteps) / this.maxSteps) ** this.power;
  }
}

export interface CosineLROptions {
  maxSteps: number;
  minLr?: number;
  warmupSteps?: number;
  warmupStartFactor?: number;
}

export class CosineLR extends LRScheduler {
  private readonly o: Required<CosineLROptions>;

  constructor(optimizer: Optimizer<GroupOptions>, options: CosineLROptions) {
    super(optimizer);
    const o = { minLr: 0, warmupSteps: 0, warmupStartFactor: 0, ...options };
    if (!(o.maxSteps > 0) || !(o.warmupSteps >= 0) || o.warmupSteps >= o.maxSteps) {
      throw new Error(`CosineLR: need maxSteps > warmupSteps >= 0, got maxSteps ${o.maxSteps}, warmupSteps ${o.warmupSteps}`);
    }
    this.o = o;
    this.apply();
  }

  protected lrAt(base: number, t: number): number {
    const o = this.o;
    if (t < o.warmupSteps) return base * (o.warmupStartFactor + ((1 - o.warmupStartFactor) * t) / o.warmupSteps);
    const progress = Math.min(t - o.warmupSteps, o.maxSteps - o.warmupSteps) / (o.maxSteps - o.warmupSteps);
    return o.minLr + ((base - o.minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }
}
