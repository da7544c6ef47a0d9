// Expected checkpoint schemas per model: the state_dict keys and shapes a converted file must
// hold, built from the key manifests (manifests.gen.ts). A model may accept several schemas
// (V-Net: vnet.pytorch with PReLU or ELU, MONAI with ELU or PReLU); the converter picks the one
// the checkpoint matches. `scaledSchema` shrinks wide dims for small test/CI configurations.
import { manifests } from './manifests.gen.js';

export type ModelName = 'vnet' | 'transunet' | 'medsam';
export const modelNames: ModelName[] = ['vnet', 'transunet', 'medsam'];

export interface Schema {
  /** e.g. 'vnet_monai' */
  id: string;
  model: ModelName;
  description: string;
  /** Expected output keys in state_dict order, with shapes. */
  tensors: Map<string, number[]>;
}

/** Keys a checkpoint may lack or carry without it being a mismatch (BatchNorm's step counter). */
export const isOptionalKey = (key: string) => key.endsWith('.num_batches_tracked');

function fromManifest(manifest: string, model: ModelName, description: string, keep: (k: string) => boolean = () => true, id = manifest): Schema {
  const m = manifests[manifest];
  if (!m) throw new Error(`weights: no key manifest '${manifest}'`);
  return { id, model, description, tensors: new Map(m.tensors.filter(([k]) => keep(k)).map(([k, s]) => [k, [...s]])) };
}

let cache: Record<ModelName, Schema[]> | null = null;

/** The schemas a model accepts for .pth / .safetensors input, most common first. */
export function schemasFor(model: ModelName): Schema[] {
  cache ??= {
    medsam: [fromManifest('medsam_vit_b', 'medsam', 'SAM ViT-B (medsam_vit_b.pth / sam_vit_b_01ec64.pth)')],
    transunet: [fromManifest('transunet_r50_vit_b16_synapse_pth', 'transunet', 'TransUNet R50-ViT-B/16 state_dict (train.py checkpoint)')],
    vnet: [
      fromManifest('vnet_pytorch', 'vnet', 'vnet.pytorch VNet(elu=False): PReLU'),
      fromManifest('vnet_pytorch', 'vnet', 'vnet.pytorch VNet(elu=True): ELU, no PReLU slopes', (k) => !/\.relu\d\.weight$/.test(k), 'vnet_pytorch_elu'),
      fromManifest('vnet_monai', 'vnet', 'MONAI VNet (act=ELU, the default)'),
      fromManifest('vnet_monai_prelu', 'vnet', "MONAI VNet(act='prelu')"),
    ],
  };
  const list = cache[model];
  if (!list) throw new Error(`weights: unknown model '${model}' (expected ${modelNames.join(', ')})`);
  return list;
}

/** The TransUNet ImageNet-21k .npz layout (flax names and shapes), input of the npz mapping. */
export function transunetNpzManifest(): Map<string, number[]> {
  return new Map(manifests.transunet_r50_vit_b16_imagenet21k_npz.tensors.map(([k, s]) => [k, [...s]]));
}

/** Divides every dim >= 64 that `factor` divides by `factor`: a small, self-consistent layout. */
export function scaleShape(shape: readonly number[], factor: number): number[] {
  return shape.map((d) => (d >= 64 && d % factor === 0 ? d / factor : d));
}

export function scaledSchema(schema: Schema, factor: number): Schema {
  if (factor === 1) return schema;
  return { ...schema, id: `${schema.id}/${factor}`, tensors: new Map([...schema.tensors].map(([k, s]) => [k, scaleShape(s, factor)])) };
}
