// One --image / --label pair of a train command, read and checked before the GPU opens: a NIfTI scan
// with its label volume (the same voxel grid), or the grey label image of a 2-D training image (the
// same size). Errors name the file and what is wrong with it.
import type { Image2D } from '../io/image.js';
import { readImage } from '../io/read-image.js';
import { readNifti, type Volume } from '../io/nifti.js';
import { CliError } from './args.js';
import { readInput } from './files.js';

/** A training scan and its label map, which must have the same voxel grid. */
export function readVolumePair(imagePath: string, labelPath: string): { volume: Volume; label: Volume } {
  const volume = readNifti(readInput(imagePath, 'training scan'), imagePath);
  const label = readNifti(readInput(labelPath, 'label map'), labelPath);
  if (volume.dims.join() !== label.dims.join()) throw new CliError(`label map ${labelPath} is ${label.dims.join('x')} voxels, its scan ${imagePath} ${volume.dims.join('x')}: they must match`);
  return { volume, label };
}

/**
 * The label image of the 2-D training image `imagePath` (`size` its width and height): a grey PNG / JPEG
 * of that size. `what` names it in messages ('label mask', 'label map'); `greyRule` says why it must be
 * grey ("a mask must be grey (0 background, anything else foreground)").
 */
export function readLabelImage(labelPath: string, what: string, imagePath: string, size: { width: number; height: number }, greyRule: string): Image2D {
  let label: Image2D;
  try {
    label = readImage(readInput(labelPath, what), labelPath);
  } catch (e) {
    throw e instanceof CliError ? e : new CliError(`${what} ${(e as Error).message}`);
  }
  if (label.channels !== 1) throw new CliError(`${what} ${labelPath} is an RGB image; ${greyRule}`);
  if (label.width !== size.width || label.height !== size.height) throw new CliError(`${what} ${labelPath} is ${label.width}x${label.height}, its image ${imagePath} ${size.width}x${size.height}: they must match`);
  return label;
}
