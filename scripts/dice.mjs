// Dice of the foreground (label > 0) of two NIfTI label maps on the same grid:
//   node scripts/dice.mjs MASK.nii.gz REFERENCE.nii.gz   (needs `npm run build`)
import { readFileSync } from 'node:fs';
import { readNifti } from '../dist/io/nifti.js';
import { labelOverlap } from '../dist/models/label-overlap.js';

const [maskPath, refPath] = process.argv.slice(2);
if (!refPath) throw new Error('usage: node scripts/dice.mjs MASK.nii.gz REFERENCE.nii.gz');
const mask = readNifti(readFileSync(maskPath), maskPath);
const ref = readNifti(readFileSync(refPath), refPath);
if (mask.dims.join() !== ref.dims.join()) throw new Error(`dice: grids differ (${mask.dims.join('x')} vs ${ref.dims.join('x')})`);
const o = labelOverlap(mask.data, ref.data);
const sameAffine = JSON.stringify(mask.affine) === JSON.stringify(ref.affine);
console.log(JSON.stringify({ ...o, dice: o.dice ?? 1, sameAffine }));
