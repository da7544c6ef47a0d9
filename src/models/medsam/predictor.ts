// MedSAM's interactive predictor: setImage() runs MedSAM's pre-processing and the image encoder once
// and keeps the embedding on the GPU; predict() runs only the prompt encoder and mask decoder, for
// one or several boxes (original pixel coordinates, batched), points and a previous low-res mask, as
// MedSAM_Inference.py post-processes: sigmoid, bilinear (align_corners=False) from the low-res grid
// straight to the original size, > 0.5. (docs/models/medsam.md section 6.)
import { noGrad } from '../../autograd.js';
import { runtime } from '../../gpu/runtime.js';
import { keep, scope } from '../../scope.js';
import { tensor, type Tensor } from '../../tensor.js';
import { gt, sigmoid } from '../../ops/elementwise.js';
import { interpolate } from '../../ops/interpolate.js';
import type { MedSAM } from './medsam.js';
import { medsamPreprocess, type ImageInput } from './preprocess.js';

export type Box = readonly [number, number, number, number];

export interface PredictOptions {
  /** one box [x0, y0, x1, y1] or several (a batch), in the original image's pixel coordinates */
  box?: Box | readonly Box[];
  /** points (x, y) in original pixel coordinates with labels 1 (foreground) / 0 (background); one set, or one per box */
  points?: { coords: readonly (readonly [number, number])[]; labels: readonly number[] } | null;
  /** a previous prediction's low-res logits [B, 1, 4g, 4g] (e.g. lowResLogits of predict) */
  maskInput?: Tensor | null;
  /** SAM's multimask output (3 masks per prompt) instead of the single mask MedSAM uses */
  multimaskOutput?: boolean;
}

export interface Prediction {
  /** 0/1 masks at the original size, [B, M, H, W] row-major (M = 1, or 3 with multimaskOutput) */
  masks: Uint8Array;
  /** the low-res logits [B, M, 4g, 4g] (256 x 256 for vit_b) on the CPU */
  lowResLogits: Float32Array;
  /** the same on the GPU, for maskInput of the next call (the caller disposes it) */
  lowResLogitsTensor: Tensor;
  /** IoU estimates [B, M] */
  iou: Float32Array;
  shape: { batch: number; masks: number; height: number; width: number; lowRes: number };
}

export class MedSAMPredictor {
  private embedding: Tensor | null = null;
  private size: { width: number; height: number } | null = null;

  constructor(readonly model: MedSAM) {}

  /** The cached image embedding [1, C, g, g] (null before setImage). */
  get imageEmbedding(): Tensor | null {
    return this.embedding;
  }

  /** Pre-processes the image (MedSAM's resize and min-max), runs the encoder and keeps the embedding. */
  async setImage(image: ImageInput): Promise<void> {
    const S = this.model.config.imageSize;
    const input = medsamPreprocess(image, S);
    this.reset();
    this.embedding = keep(scope(() => noGrad(() => this.model.embedImage(tensor(input, [1, 3, S, S])))));
    this.size = { width: image.width, height: image.height };
    await runtime().sync(); // the encoder's GPU errors surface here, not in predict
  }

  /** Prompt encoder and decoder on the cached embedding. */
  async predict(options: PredictOptions): Promise<Prediction> {
    if (!this.embedding || !this.size) throw new Error('MedSAMPredictor.predict: call setImage() first');
    const { width: W, height: H } = this.size;
    const S = this.model.config.imageSize;
    const sx = S / W;
    const sy = S / H;
    const boxes = options.box === undefined ? [] : typeof options.box[0] === 'number' ? [options.box as Box] : (options.box as readonly Box[]);
    const pts = options.points ?? null;
    if (!boxes.length && !pts && !options.maskInput) throw new Error('MedSAMPredictor.predict: give a box, points or a mask input');
    const B = Math.max(boxes.length, 1);
    const multimask = options.multimaskOutput ?? false;
    const out = scope(() =>
      noGrad(() => {
        const boxT = boxes.length ? tensor(boxes.flatMap((b) => [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]), [boxes.length, 4]) : null;
        let points = null;
        if (pts) {
          const n = pts.coords.length;
          const coords = pts.coords.flatMap(([x, y]) => [x * sx, y * sy]);
          points = {
            coords: tensor(Array.from({ length: B }, () => coords).flat(), [B, n, 2]),
            labels: tensor(Array.from({ length: B }, () => pts.labels).flat(), [B, n]),
          };
        }
        const { lowResLogits, iouPredictions } = this.model.decode(this.embedding!, { boxes: boxT, points, masks: options.maskInput ?? null }, multimask);
        const masks = gt(interpolate(sigmoid(lowResLogits), { size: [H, W], mode: 'bilinear', alignCorners: false }), 0.5);
        return { lowResLogits: lowResLogits.contiguous(), iouPredictions, masks };
      }),
    );
    const [lowRes, iou, m] = await Promise.all([out.lowResLogits.read(), out.iouPredictions.read(), out.masks.read()]);
    out.iouPredictions.dispose();
    out.masks.dispose();
    const [batch, M, g] = out.lowResLogits.shape;
    return {
      masks: Uint8Array.from(m),
      lowResLogits: lowRes,
      lowResLogitsTensor: out.lowResLogits,
      iou,
      shape: { batch, masks: M, height: H, width: W, lowRes: g },
    };
  }

  /** Frees the cached embedding. */
  reset(): void {
    this.embedding?.dispose();
    this.embedding = null;
    this.size = null;
  }
}
