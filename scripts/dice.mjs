// Dice of the foreground (label > 0) of two NIfTI label maps on the same grid:
//   node scripts/dice.mjs MASK.nii.gz REFERENCE.nii.gz   (needs `npm run build`)
import { readFileSync } from 'node:fs';
import { readNifti } from '../dist/io/nifti.js';

const [maskPath, refPath] = process.argv.slice(2);
if (!refPath) throw new Error('usage: node scripts/dice.mjs MASK.nii.gz REFERENCE.nii.gz');
const mask = readNifti(readFileSync(maskPath), maskPath);
const ref = readNifti(readFileSync(refPath), refPath);
if (mask.dims.join() !== ref.dims.join()) throw new Error(`dice: grids differ (${mask.dims.join('x')} vs ${ref.dims.join('x')})`);
let inter = 0;
let a = 0;
let b = 0;
for (let i = 0; i < mask.data.length; i++) {
  const m = mask.data[i] > 0;
  const r = ref.data[i] > 0;
  if (m && r) inter++;
  if (m) a++;
  if (r) b++;
}
const sameAffine = JSON.stringify(mask.affine) === JSON.stringify(ref.affine);
console.log(JSON.stringify({ dice: a + b ? (2 * inter) / (a + b) : 1, predicted: a, reference: b, intersection: inter, sameAffine }));
