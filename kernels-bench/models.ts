// Model benchmarks (`--models`): each network's forward (eval mode, no gradients) and
// forward+backward (train mode, the mean of the output as the loss, gradients to every parameter,
// freed after each run) with random weights: V-Net 'paper' on a 128x128x64 volume, TransUNet
// R50-ViT-B_16 on a 224x224 slice, MedSAM vit_b's image encoder on a 1024x1024 image and its prompt
// encoder + mask decoder per box on a cached (random) image embedding, as MedSAMPredictor.predict
// runs them. --quick uses each model's tiny configuration (V-Net's at half width, 'tiny/2'). Per row: cold time (the first run,
// pipeline creation included), warm time (timing.ts), GFLOP counted from the layer shapes during
// the cold run (flops.ts; forward+backward counted as 3x the forward), GFLOP/s as a share of the
// FMA peak measured in the same run, and peak GPU memory: the buffer pool's most live bytes during
// the row (weights and, for a backward, gradients included).
import { keep, manualSeed, memoryStats, models, noGrad, rand, resetPeakMemory, runtime, scope, tensor, type nn, type Tensor } from 'medseg';
import { countFlops, installFlopHooks } from './flops.js';
import { coldRun, timeRuns } from './timing.js';

export type Pass = 'forward' | 'forward+backward';

/** One measured part of a model: encodes one run, with or without the backward pass. */
export interface ModelPart {
  /** e.g. "encoder", "decoder per box" ('' for the whole model) */
  part: string;
  /** the input, e.g. "1x1x64x128x128" */
  input: string;
  /** the parameters this part trains (counted in the row) */
  params: number;
  run(pass: Pass): void;
}

export interface ModelBench {
  /** the name --models takes: vnet, transunet, medsam */
  key: string;
  /** "V-Net paper" */
  model: string;
  /** the parts build() returns, by name */
  parts: string[];
  /** builds the model with random weights and its inputs; dispose frees them */
  build(): { parts: ModelPart[]; dispose(): void };
  /**
   * Forward GFLOP per part at full size, as flops.ts counts them, for the plan's time estimate
   * before anything is built (absent for the tiny configurations).
   */
  gflop?: Record<string, number>;
}

export interface ModelRow {
  family: 'models';
  model: string;
  part: string;
  pass: Pass;
  input: string;
  params: number;
  coldMs: number;
  /** GPU time from timestamp queries where timeSource says so, else wall (timing.ts) */
  warmMs: number;
  wallMs: number;
  timeSource: 'timestamp' | 'wall';
  spreadPct: number;
  runs: number;
  gflop: number;
  gflops: number;
  pctFmaPeak: number;
  /** the pool's most live bytes during the row, in MiB */
  peakMiB: number;
  /** live bytes before the row (weights, inputs; cached embedding), in MiB */
  baseMiB: number;
}

const shape = (t: Tensor) => t.shape.join('x');
const countParams = (m: nn.Module) => m.parameters().reduce((s, p) => s + p.size, 0);

/** Runs f for one pass: eval + noGrad for the forward; train mode, mean(f()).backward() and the gradients freed for forward+backward. */
function runPass(m: nn.Module, pass: Pass, f: () => Tensor): void {
  if (pass === 'forward') {
    m.eval();
    scope(() => {
      noGrad(f);
    });
  } else {
    m.train();
    scope(() => {
      f().mean().backward();
    });
    m.zeroGrad();
  }
}

function vnet(quick: boolean): ModelBench {
  return {
    key: 'vnet',
    model: quick ? 'V-Net tiny/2' : 'V-Net paper',
    parts: [''],
    // the convs of docs/models/vnet.md's layer table at 64x128x128 (5x5x5: 4.2 in, 35 + 34 + 25 + 8.5
    // down, 67 + 134 + 134 + 268 up, 17 out)
    gflop: quick ? undefined : { '': 729 },
    build() {
      // quick: the tiny preset at half its width (2 base channels), so the smoke test stays short on SwiftShader
      const net = new models.VNet(quick ? { preset: 'tiny', baseChannels: 2 } : { preset: 'paper' });
      // [N, C, D, H, W]: the paper's 128 x 128 x 64 volume (tiny: 32 x 16 x 16: after four halvings batch norm still sees two values per channel)
      const x = keep(rand(quick ? [1, 1, 16, 16, 32] : [1, 1, 64, 128, 128]));
      return {
        parts: [{ part: '', input: shape(x), params: countParams(net), run: (p) => runPass(net, p, () => net.forward(x)) }],
        dispose: () => {
          x.dispose();
          net.dispose();
        },
      };
    },
  };
}

function transunet(quick: boolean): ModelBench {
  return {
    key: 'transunet',
    model: quick ? 'TransUNet tiny' : 'TransUNet R50-ViT-B_16',
    parts: [''],
    // counted by flops.ts in kernels-bench/results/llvmpipe-models-transunet.md
    gflop: quick ? undefined : { '': 58.5 },
    build() {
      const net = new models.TransUNet({ config: quick ? 'tiny' : 'R50-ViT-B_16' });
      const x = keep(rand([1, 1, net.imgSize, net.imgSize]));
      return {
        parts: [{ part: '', input: shape(x), params: countParams(net), run: (p) => runPass(net, p, () => net.forward(x)) }],
        dispose: () => {
          x.dispose();
          net.dispose();
        },
      };
    },
  };
}

function medsam(quick: boolean): ModelBench {
  return {
    key: 'medsam',
    model: quick ? 'MedSAM tiny' : 'MedSAM vit_b',
    parts: ['image encoder', 'decoder per box'],
    // encoder: 12 blocks of linears (58 GFLOP each), attention in 25 windows of 196 tokens (8 blocks,
    // 3 each) and over 4096 tokens (4 blocks, 52 each), patch embedding and neck (11); the decoder
    // as flops.ts counted it in kernels-bench/results/llvmpipe-models-medsam-decoder.md
    gflop: quick ? undefined : { 'image encoder': 937, 'decoder per box': 3.6 },
    build() {
      const net = new models.MedSAM({ config: quick ? 'tiny' : 'vit_b' });
      const c = net.config;
      const S = c.imageSize;
      const g = S / c.patchSize;
      const image = keep(rand([1, 3, S, S]));
      // the predictor's cached embedding (random here, as the weights are), and one box in input pixels
      const embedding = keep(rand([1, c.promptEmbedDim, g, g]));
      const box = keep(tensor([0.1 * S, 0.15 * S, 0.6 * S, 0.7 * S], [1, 4]));
      const decoderParams = countParams(net.prompt_encoder) + countParams(net.mask_decoder);
      return {
        parts: [
          { part: 'image encoder', input: shape(image), params: countParams(net.image_encoder), run: (p) => runPass(net, p, () => net.embedImage(image)) },
          { part: 'decoder per box', input: `embedding ${shape(embedding)}, 1 box`, params: decoderParams, run: (p) => runPass(net, p, () => net.decode(embedding, { boxes: box }).lowResLogits) },
        ],
        dispose: () => {
          for (const t of [image, embedding, box]) t.dispose();
          net.dispose();
        },
      };
    },
  };
}

/** The model benchmarks: full sizes, or the tiny configurations with quick. */
export function modelBenches(quick: boolean): ModelBench[] {
  return [vnet(quick), transunet(quick), medsam(quick)].map((b) => ({
    ...b,
    build: () => {
      installFlopHooks();
      manualSeed(0);
      return b.build();
    },
  }));
}

export const PASSES: Pass[] = ['forward', 'forward+backward'];
export const MODEL_KEYS = ['vnet', 'transunet', 'medsam'];

const MiB = 2 ** 20;

/**
 * Measures one part in one pass: cold run (with the FLOP count), then warm runs for `budget`
 * seconds (timing.ts), with the pool's peak reset first.
 */
export async function measurePart(model: string, p: ModelPart, pass: Pass, budget: number, fmaPeak: number, minBatches?: number): Promise<ModelRow> {
  const rt = runtime();
  await rt.sync();
  const base = memoryStats().liveBytes;
  resetPeakMemory();
  let counted = 0;
  const cold = await coldRun(() => {
    counted = countFlops(() => p.run(pass)).flops;
  });
  const t = await timeRuns(() => p.run(pass), budget, minBatches);
  const flops = pass === 'forward' ? counted : 3 * counted;
  const gflops = flops / t.median / 1e9;
  return {
    family: 'models', model, part: p.part, pass, input: p.input, params: p.params,
    coldMs: cold * 1000, warmMs: t.median * 1000, wallMs: t.wall * 1000, timeSource: t.source, spreadPct: (100 * (t.max - t.min)) / t.median, runs: t.runs,
    gflop: flops / 1e9, gflops, pctFmaPeak: (100 * gflops) / fmaPeak,
    peakMiB: memoryStats().peakBytes / MiB, baseMiB: base / MiB,
  };
}

export const modelName = (r: Pick<ModelRow, 'model' | 'part'>) => (r.part ? `${r.model} ${r.part}` : r.model);

/** The Markdown table of the model rows. */
export function modelMarkdown(rows: readonly ModelRow[]): string {
  if (!rows.length) return '';
  const f = (v: number, d: number) => v.toFixed(d);
  return [
    '',
    'Models (random weights): forward = eval mode, no gradients; forward+backward = train mode, mean(output).backward(), GFLOP counted from layer shapes (convs, linears, attention; backward 2x forward); peak MiB = most live GPU bytes in the pool during the row (weights included), base = before it.',
    '',
    '| # | model | pass | input | params (M) | cold ms | warm ms | wall ms | spread % | GFLOP | GFLOP/s | % FMA peak | peak MiB | base MiB |',
    '|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${modelName(r)} | ${r.pass} | ${r.input} | ${f(r.params / 1e6, 2)} | ${f(r.coldMs, 1)} | ${f(r.warmMs, 1)} | ${f(r.wallMs ?? r.warmMs, 1)} | ${f(r.spreadPct, 0)} | ${r.gflop < 1 ? r.gflop.toPrecision(3) : f(r.gflop, 1)} | ${f(r.gflops, 3)} | ${f(r.pctFmaPeak, 1)} | ${f(r.peakMiB, 1)} | ${f(r.baseMiB, 1)} |`,
    ),
    '',
  ].join('\n');
}
