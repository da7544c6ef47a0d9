// TransUNet's hybrid CNN (networks/vit_seg_modeling_resnet_skip.py): ResNetV2 with weight-standardised
// convolutions (StdConv2d, eps 1e-5) and GroupNorm. root = 7x7/2 StdConv + GN + ReLU, a 3x3/2 max
// pool with no padding, then three stages of bottleneck units (PreActBottleneck, post-activation in
// fact). It returns the 1/16 feature map and the skips [1/8, 1/4 (zero-padded to img/4), 1/2].
// Spec: docs/models/transunet.md section 2.1. Module names equal the PyTorch ones.
import type { Tensor } from '../../tensor.js';
import { pad } from '../../ops/shape.js';
import { relu } from '../../ops/elementwise.js';
import { maxPool2d } from '../../ops/pool.js';
import { Module } from '../../nn/module.js';
import { StdConv2d } from '../../nn/conv.js';
import { GroupNorm } from '../../nn/norm.js';

/** GN1/GN2/GN3 and the root's GN: eps 1e-6 (the projection's per-channel GN keeps PyTorch's 1e-5). */
const GN_EPS = 1e-6;

/**
 * One bottleneck unit (stride on the 3x3 conv and on the projection):
 *   r   = x, or gn_proj(downsample(x)) when the stride or the width changes
 *   out = relu(r + gn3(conv3(relu(gn2(conv2(relu(gn1(conv1(x)))))))))
 */
export class PreActBottleneck extends Module {
  readonly gn1: GroupNorm;
  readonly conv1: StdConv2d;
  readonly gn2: GroupNorm;
  readonly conv2: StdConv2d;
  readonly gn3: GroupNorm;
  readonly conv3: StdConv2d;
  readonly downsample: StdConv2d | null = null;
  readonly gn_proj: GroupNorm | null = null;

  constructor(cin: number, cout: number, cmid: number, stride: number, gnGroups = 32) {
    super();
    // registered in TransUNet's order, so stateDict() lists the checkpoint's keys in its order
    this.gn1 = this.child('gn1', new GroupNorm(gnGroups, cmid, { eps: GN_EPS }));
    this.conv1 = this.child('conv1', new StdConv2d(cin, cmid, 1, { bias: false }));
    this.gn2 = this.child('gn2', new GroupNorm(gnGroups, cmid, { eps: GN_EPS }));
    this.conv2 = this.child('conv2', new StdConv2d(cmid, cmid, 3, { stride, padding: 1, bias: false }));
    this.gn3 = this.child('gn3', new GroupNorm(gnGroups, cout, { eps: GN_EPS }));
    this.conv3 = this.child('conv3', new StdConv2d(cmid, cout, 1, { bias: false }));
    if (stride !== 1 || cin !== cout) {
      this.downsample = this.child('downsample', new StdConv2d(cin, cout, 1, { stride, bias: false }));
      this.gn_proj = this.child('gn_proj', new GroupNorm(cout, cout));
    }
  }

  forward(x: Tensor): Tensor {
    const residual = this.downsample && this.gn_proj ? this.gn_proj.forward(this.downsample.forward(x)) : x;
    let y = relu(this.gn1.forward(this.conv1.forward(x)));
    y = relu(this.gn2.forward(this.conv2.forward(y)));
    y = this.gn3.forward(this.conv3.forward(y));
    return relu(residual.add(y));
  }
}

/** root: conv (7x7/2, pad 3, no bias) -> gn -> relu. */
export class Root extends Module {
  readonly conv: StdConv2d;
  readonly gn: GroupNorm;

  constructor(width: number, gnGroups = 32) {
    super();
    this.conv = this.child('conv', new StdConv2d(3, width, 7, { stride: 2, padding: 3, bias: false }));
    this.gn = this.child('gn', new GroupNorm(gnGroups, width, { eps: GN_EPS }));
  }

  forward(x: Tensor): Tensor {
    return relu(this.gn.forward(this.conv.forward(x)));
  }
}

/** A stage: unit1 (cin -> cout, the stride) then units 2..n (cout -> cout, stride 1). */
export class Stage extends Module {
  readonly units: PreActBottleneck[] = [];

  constructor(units: number, cin: number, cout: number, cmid: number, stride: number, gnGroups = 32) {
    super();
    for (let u = 1; u <= units; u++) this.units.push(this.child(`unit${u}`, new PreActBottleneck(u === 1 ? cin : cout, cout, cmid, u === 1 ? stride : 1, gnGroups)));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const u of this.units) y = u.forward(y);
    return y;
  }
}

/** body: block1 (width -> 4 width, stride 1), block2 (-> 8 width, /2), block3 (-> 16 width, /2). */
export class Body extends Module {
  readonly block1: Stage;
  readonly block2: Stage;
  readonly block3: Stage;

  constructor(blockUnits: readonly [number, number, number], width: number, gnGroups = 32) {
    super();
    this.block1 = this.child('block1', new Stage(blockUnits[0], width, width * 4, width, 1, gnGroups));
    this.block2 = this.child('block2', new Stage(blockUnits[1], width * 4, width * 8, width * 2, 2, gnGroups));
    this.block3 = this.child('block3', new Stage(blockUnits[2], width * 8, width * 16, width * 4, 2, gnGroups));
  }
}

export interface ResNetV2Output {
  /** the 1/16 feature map [B, 16 width, img/16, img/16] */
  x: Tensor;
  /** skips, deepest first: block2's output (1/8), block1's (1/4, zero-padded), the root's (1/2) */
  features: Tensor[];
}

export class ResNetV2 extends Module {
  readonly width: number;
  readonly root: Root;
  readonly body: Body;

  constructor(blockUnits: readonly [number, number, number], widthFactor: number, gnGroups = 32) {
    super();
    this.width = Math.trunc(64 * widthFactor);
    this.root = this.child('root', new Root(this.width, gnGroups));
    this.body = this.child('body', new Body(blockUnits, this.width, gnGroups));
  }

  forward(x: Tensor): ResNetV2Output {
    const inSize = x.shape[2];
    const features: Tensor[] = [];
    let h = this.root.forward(x);
    features.push(h);
    h = maxPool2d(h, 3, { stride: 2, padding: 0 });
    const stages = [this.body.block1, this.body.block2];
    for (let i = 0; i < stages.length; i++) {
      h = stages[i].forward(h);
      // TransUNet's rule: a stage output short of int(img / 4 / (i + 1)) by 1 or 2 is copied into
      // zeros of that size at (0, 0) for the skip; the next stage reads the unpadded tensor
      const right = Math.trunc(inSize / 4 / (i + 1));
      const short = right - h.shape[2];
      if (short !== 0 && !(short > 0 && short < 3)) throw new Error(`TransUNet ResNetV2: stage ${i + 1} output is ${h.shape[2]} wide, expected ${right} (or 1-2 less)`);
      features.push(short ? pad(h, [0, right - h.shape[3], 0, short]) : h);
    }
    h = this.body.block3.forward(h);
    return { x: h, features: features.reverse() };
  }
}
