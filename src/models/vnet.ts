// V-Net (Milletari, Navab, Ahmadi 2016) in its two published PyTorch forms, with their module names so
// converted checkpoints load with loadStateDict(strict) (docs/models/vnet.md):
//   'vnet.pytorch' (mattmacy/vnet.pytorch): conv1 / bn1 / relu1 names, biases on every conv, PReLU
//                  (or ELU, then no slope keys), and ContBatchNorm3d: batch statistics at inference too;
//   'monai' (MONAI's VNet): conv_block.conv / conv_block.adn.N / act_function names, bias-free 5x5x5
//                  and down convs, ELU (or PReLU), standard eval-mode batch norm.
// Topology (spec section 3): in_tr (5x5x5 conv + the input broadcast to every channel), down_tr32..256
// (2x2x2 stride-2 conv, 1-2-3-2 residual 5x5x5 LUConvs), up_tr256..32 (2x2x2 stride-2 transposed conv,
// concat [up, skip], 2-2-1-1 LUConvs, residual), out_tr (5x5x5 conv, act, 1x1x1 conv). The names keep
// the paper's channel counts (down_tr32 ... up_tr32) whatever baseChannels is. forward() returns logits
// [N, outChannels, D, H, W] in both variants; vnet.pytorch's flattened softmax is softmax(logits, 1).
import '../ops/methods.js';
import { noGrad } from '../autograd.js';
import { scope } from '../scope.js';
import { Tensor, rand, shapeStr, zeros } from '../tensor.js';
import { cat } from '../ops/shape.js';
import { elu, gt, mul, prelu } from '../ops/elementwise.js';
import { batchNorm } from '../ops/norm.js';
import { Module, type LoadResult } from '../nn/module.js';
import { Conv3d, ConvTranspose3d } from '../nn/conv.js';
import { BatchNorm3d } from '../nn/norm.js';
import { PReLU } from '../nn/activation.js';

export type VNetVariant = 'vnet.pytorch' | 'monai';
export type VNetActivation = 'prelu' | 'elu';
/** 'batch': batch statistics also at inference (vnet.pytorch's ContBatchNorm3d); 'running': PyTorch's eval mode. */
export type BatchNormMode = 'batch' | 'running';
export type VNetPreset = 'paper' | 'monai' | 'tiny';

export interface VNetConfig {
  variant: VNetVariant;
  inChannels: number;
  outChannels: number;
  /** channels after the input transition (16 in both published forms); each level doubles it */
  baseChannels: number;
  act: VNetActivation;
  batchNormMode: BatchNormMode;
  /** Dropout3d probability in down_tr128/256, up_tr256/128 and on every skip while training (0.5 published) */
  dropout: number;
}

/**
 * paper: vnet.pytorch as its train.py builds it (PReLU, batch-statistics BN); monai: MONAI's VNet
 * defaults with 2 output channels; tiny: the paper's code path with 4 base channels, no dropout and
 * running-statistics BN, for tests and CPU training.
 */
export const VNET_PRESETS: Record<VNetPreset, VNetConfig> = {
  paper: { variant: 'vnet.pytorch', inChannels: 1, outChannels: 2, baseChannels: 16, act: 'prelu', batchNormMode: 'batch', dropout: 0.5 },
  monai: { variant: 'monai', inChannels: 1, outChannels: 2, baseChannels: 16, act: 'elu', batchNormMode: 'running', dropout: 0.5 },
  tiny: { variant: 'vnet.pytorch', inChannels: 1, outChannels: 2, baseChannels: 4, act: 'prelu', batchNormMode: 'running', dropout: 0 },
};

/** Builds the full configuration from a preset (default 'paper') and overrides. */
export function vnetConfig(options: Partial<VNetConfig> & { preset?: VNetPreset } = {}): VNetConfig {
  const { preset, ...rest } = options;
  const base = VNET_PRESETS[preset ?? 'paper'];
  if (!base) throw new Error(`VNet: unknown preset '${preset}' (expected ${Object.keys(VNET_PRESETS).join(', ')})`);
  const cfg: VNetConfig = { ...base };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  if (cfg.variant !== 'vnet.pytorch' && cfg.variant !== 'monai') throw new Error(`VNet: variant must be 'vnet.pytorch' or 'monai', got '${cfg.variant}'`);
  if (cfg.act !== 'prelu' && cfg.act !== 'elu') throw new Error(`VNet: act must be 'prelu' or 'elu', got '${cfg.act}'`);
  if (cfg.batchNormMode !== 'batch' && cfg.batchNormMode !== 'running') throw new Error(`VNet: batchNormMode must be 'batch' or 'running', got '${cfg.batchNormMode}'`);
  if (!(cfg.baseChannels > 0) || cfg.baseChannels % cfg.inChannels) throw new Error(`VNet: inChannels (${cfg.inChannels}) must divide baseChannels (${cfg.baseChannels})`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`VNet: dropout must be in [0, 1), got ${cfg.dropout}`);
  return cfg;
}

/** Where every block reads the shared settings that may change after construction. */
interface Shared {
  cfg: VNetConfig;
  /** k > 0 during the k-th pass of calibrateBatchNorm: batch statistics, running ones averaged with weight 1/k */
  calibrationPass?: number;
}

/**
 * BatchNorm3d that, in 'batch' mode, normalises with the batch statistics also in eval mode
 * (ContBatchNorm3d). The running statistics are not touched at inference (vnet.pytorch keeps moving
 * them there, but nothing reads them in this mode).
 */
class VNetBatchNorm extends BatchNorm3d {
  constructor(
    channels: number,
    private readonly shared: Shared,
  ) {
    super(channels);
  }
  override forward(x: Tensor): Tensor {
    const k = this.shared.calibrationPass;
    if (k) return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, true, 1 / k, this.eps);
    if (this.training || this.shared.cfg.batchNormMode === 'running') return super.forward(x);
    return batchNorm(x, null, null, this.weight, this.bias, true, 0, this.eps);
  }
}

/** One activation site: per-channel PReLU (registered as `name` in `owner`) or parameter-free ELU. */
function activation(owner: Module, name: string, act: VNetActivation, channels: number): (x: Tensor) => Tensor {
  if (act === 'elu') return (x) => elu(x, 1);
  const p = owner.child(name, new PReLU(channels));
  return (x) => prelu(x, p.weight);
}

/** Dropout3d: zeroes whole channels per sample (mask [N, C, 1, 1, 1]), scales survivors by 1/(1-p). */
function dropout3d(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const [n, c] = x.shape;
  return scope(() => mul(x, noGrad(() => mul(gt(rand([n, c, 1, 1, 1]), p), 1 / (1 - p)))));
}

/** bn(conv5(x)) with the variant's names: conv1 + bn1, or conv_block.conv + conv_block.adn.N. */
class ConvBn {
  readonly conv: Conv3d;
  readonly bn: VNetBatchNorm;
  constructor(owner: Module, s: Shared, cin: number, cout: number) {
    if (s.cfg.variant === 'monai') {
      const block = owner.child('conv_block', new Module());
      this.conv = block.child('conv', new Conv3d(cin, cout, 5, { padding: 2, bias: false }));
      this.bn = block.child('adn', new Module()).child('N', new VNetBatchNorm(cout, s));
    } else {
      this.conv = owner.child('conv1', new Conv3d(cin, cout, 5, { padding: 2 }));
      this.bn = owner.child('bn1', new VNetBatchNorm(cout, s));
    }
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.bn.forward(this.conv.forward(x)));
  }
}

/** LUConv(c): act(bn(conv5(x))). */
class LUConv extends Module {
  private readonly cb: ConvBn;
  private readonly act: (x: Tensor) => Tensor;
  constructor(s: Shared, channels: number) {
    super();
    const monai = s.cfg.variant === 'monai';
    this.act = activation(this, monai ? 'act_function' : 'relu1', s.cfg.act, channels);
    this.cb = new ConvBn(this, s, channels, channels);
  }
  forward(x: Tensor): Tensor {
    return this.act(this.cb.forward(x));
  }
}

/** `ops`: a Sequential of LUConvs (keys ops.0, ops.1, ...); returns a new tensor, x is kept. */
class LUConvStack extends Module {
  private readonly convs: LUConv[] = [];
  constructor(s: Shared, channels: number, depth: number) {
    super();
    for (let i = 0; i < depth; i++) this.convs.push(this.child(String(i), new LUConv(s, channels)));
  }
  forward(x: Tensor): Tensor {
    return this.convs.reduce((h, c) => c.forward(h), x);
  }
}

/** in_tr: act(bn(conv5(x)) + x repeated over the channels (channel c holds input channel c mod Cin)). */
class InputTransition extends Module {
  private readonly cb: ConvBn;
  private readonly act: (x: Tensor) => Tensor;
  constructor(private readonly s: Shared) {
    super();
    const { cfg } = s;
    this.act = activation(this, cfg.variant === 'monai' ? 'act_function' : 'relu1', cfg.act, cfg.baseChannels);
    this.cb = new ConvBn(this, s, cfg.inChannels, cfg.baseChannels);
  }
  forward(x: Tensor): Tensor {
    const reps = this.s.cfg.baseChannels / this.s.cfg.inChannels;
    // one input channel broadcasts over the channel dim; several are tiled by a concat
    const xs = reps === 1 || x.shape[1] === 1 ? x : cat(new Array<Tensor>(reps).fill(x), 1);
    return this.act(this.cb.forward(x).add(xs));
  }
}

/** down_trK: d = act1(bn1(down_conv(x))); out = act2(ops(dropout(d)) + d). */
class DownTransition extends Module {
  private readonly down: Conv3d;
  private readonly bn: VNetBatchNorm;
  private readonly act1: (x: Tensor) => Tensor;
  private readonly act2: (x: Tensor) => Tensor;
  private readonly ops: LUConvStack;
  constructor(
    s: Shared,
    cin: number,
    depth: number,
    private readonly dropout: number,
  ) {
    super();
    const { cfg } = s;
    const cout = 2 * cin;
    const monai = cfg.variant === 'monai';
    this.down = this.child('down_conv', new Conv3d(cin, cout, 2, { stride: 2, bias: !monai }));
    this.bn = this.child('bn1', new VNetBatchNorm(cout, s));
    this.act1 = activation(this, monai ? 'act_function1' : 'relu1', cfg.act, cout);
    this.act2 = activation(this, monai ? 'act_function2' : 'relu2', cfg.act, cout);
    this.ops = this.child('ops', new LUConvStack(s, cout, depth));
  }
  forward(x: Tensor): Tensor {
    const d = scope(() => this.act1(this.bn.forward(this.down.forward(x))));
    const o = this.ops.forward(dropout3d(d, this.dropout, this.training));
    return this.act2(o.add(d));
  }
}

/** up_trK: u = act1(bn1(up_conv(dropout(x)))); c = [u, dropout(skip)]; out = act2(ops(c) + c). */
class UpTransition extends Module {
  private readonly up: ConvTranspose3d;
  private readonly bn: VNetBatchNorm;
  private readonly act1: (x: Tensor) => Tensor;
  private readonly act2: (x: Tensor) => Tensor;
  private readonly ops: LUConvStack;
  constructor(
    s: Shared,
    cin: number,
    cout: number,
    depth: number,
    private readonly dropout: number,
    private readonly skipDropout: number,
  ) {
    super();
    const { cfg } = s;
    const monai = cfg.variant === 'monai';
    this.up = this.child('up_conv', new ConvTranspose3d(cin, cout / 2, 2, { stride: 2 }));
    this.bn = this.child('bn1', new VNetBatchNorm(cout / 2, s));
    this.act1 = activation(this, monai ? 'act_function1' : 'relu1', cfg.act, cout / 2);
    this.act2 = activation(this, monai ? 'act_function2' : 'relu2', cfg.act, cout);
    this.ops = this.child('ops', new LUConvStack(s, cout, depth));
  }
  forward(x: Tensor, skip: Tensor): Tensor {
    const xcat = scope(() => {
      const u = this.act1(this.bn.forward(this.up.forward(dropout3d(x, this.dropout, this.training))));
      return cat([u, dropout3d(skip, this.skipDropout, this.training)], 1);
    });
    const o = this.ops.forward(xcat);
    return this.act2(o.add(xcat));
  }
}

/** out_tr: conv2(act(bn(conv5(x)))), conv2 a 1x1x1 conv with bias. */
class OutputTransition extends Module {
  private readonly cb: ConvBn;
  private readonly act: (x: Tensor) => Tensor;
  private readonly conv2: Conv3d;
  constructor(s: Shared, cin: number) {
    super();
    const { cfg } = s;
    this.act = activation(this, cfg.variant === 'monai' ? 'act_function1' : 'relu1', cfg.act, cfg.outChannels);
    this.cb = new ConvBn(this, s, cin, cfg.outChannels);
    this.conv2 = this.child('conv2', new Conv3d(cfg.outChannels, cfg.outChannels, 1));
  }
  forward(x: Tensor): Tensor {
    return this.conv2.forward(this.act(this.cb.forward(x)));
  }
}

export class VNet extends Module {
  private readonly shared: Shared;
  private readonly inTr: InputTransition;
  private readonly downs: DownTransition[];
  private readonly ups: UpTransition[];
  private readonly outTr: OutputTransition;

  /** `new VNet({ preset: 'tiny' })`, `new VNet({ variant: 'monai', act: 'prelu' })` (preset default 'paper'). */
  constructor(options: Partial<VNetConfig> & { preset?: VNetPreset } = {}) {
    super();
    const s: Shared = { cfg: vnetConfig(options) };
    this.shared = s;
    const b = s.cfg.baseChannels;
    const p = s.cfg.dropout;
    this.inTr = this.child('in_tr', new InputTransition(s));
    this.downs = [
      this.child('down_tr32', new DownTransition(s, b, 1, 0)),
      this.child('down_tr64', new DownTransition(s, 2 * b, 2, 0)),
      this.child('down_tr128', new DownTransition(s, 4 * b, 3, p)),
      this.child('down_tr256', new DownTransition(s, 8 * b, 2, p)),
    ];
    this.ups = [
      this.child('up_tr256', new UpTransition(s, 16 * b, 16 * b, 2, p, p)),
      this.child('up_tr128', new UpTransition(s, 16 * b, 8 * b, 2, p, p)),
      this.child('up_tr64', new UpTransition(s, 8 * b, 4 * b, 1, 0, p)),
      this.child('up_tr32', new UpTransition(s, 4 * b, 2 * b, 1, 0, p)),
    ];
    this.outTr = this.child('out_tr', new OutputTransition(s, 2 * b));
  }

  get config(): Readonly<VNetConfig> {
    return this.shared.cfg;
  }

  /**
   * Replaces every batch norm's running statistics by their plain average over `passes` forward passes
   * of next(i) (each pass normalised with its own batch statistics, as in training), with the weights as
   * they are now and no gradients. Training's running statistics are a moving average (momentum 0.1)
   * over patches seen while the weights were still changing, flipped and deformed; at the end of
   * training this gives segment-time statistics of the final weights on unaugmented windows.
   * next(i)'s tensors are disposed here.
   */
  calibrateBatchNorm(passes: number, next: (i: number) => Tensor): void {
    const wasTraining = this.training;
    this.eval();
    try {
      for (let k = 1; k <= passes; k++) {
        const x = next(k - 1);
        this.shared.calibrationPass = k;
        try {
          scope(() => noGrad(() => this.forward(x))).dispose();
        } finally {
          x.dispose();
        }
      }
    } finally {
      this.shared.calibrationPass = 0;
      this.train(wasTraining);
    }
  }

  /** Switches between batch-statistics (vnet.pytorch) and running-statistics (eval) batch norm at inference. */
  setBatchNormMode(mode: BatchNormMode): this {
    if (mode !== 'batch' && mode !== 'running') throw new Error(`VNet.setBatchNormMode: expected 'batch' or 'running', got '${mode}'`);
    this.shared.cfg = { ...this.shared.cfg, batchNormMode: mode };
    return this;
  }

  /**
   * loadStateDict that, like PyTorch's BatchNorm, reads a missing `num_batches_tracked` as 0 (2017-era
   * vnet.pytorch checkpoints lack it, and the converter drops it by default).
   */
  override loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const src = new Map(dict instanceof Map ? dict : Object.entries(dict));
    return scope(() => {
      for (const [k] of this.namedBuffers()) if (k.endsWith('.num_batches_tracked') && !src.has(k)) src.set(k, zeros([]));
      return super.loadStateDict(src, options);
    });
  }

  /** Logits [N, outChannels, D, H, W] for x [N, inChannels, D, H, W] with D, H, W divisible by 16. */
  forward(x: Tensor): Tensor {
    const c = this.shared.cfg;
    if (x.ndim !== 5 || x.shape[1] !== c.inChannels || x.shape.slice(2).some((d) => d % 16 !== 0 || d === 0)) {
      throw new Error(`VNet: input must be [N, ${c.inChannels}, D, H, W] with D, H, W positive multiples of 16, got ${shapeStr(x.shape)}`);
    }
    const out16 = this.inTr.forward(x);
    const out32 = this.downs[0].forward(out16);
    const out64 = this.downs[1].forward(out32);
    const out128 = this.downs[2].forward(out64);
    const out256 = this.downs[3].forward(out128);
    const u256 = this.ups[0].forward(out256, out128);
    const u128 = this.ups[1].forward(u256, out64);
    const u64 = this.ups[2].forward(u128, out32);
    const u32 = this.ups[3].forward(u64, out16);
    return this.outTr.forward(u32);
  }
}
