// The three-view slice viewer on 2D canvases: axial, coronal and sagittal slices of one volume
// with window/level, per-view zoom and pan, a shared cursor (clicking a view moves the other two
// views' slices there), and coloured overlays (the label, the V-Net prediction, the MedSAM mask,
// TransUNet's class labels in a colour per class) blended into the slice pixels. Drawn with the canvas 2D API rather than WebGL (NiiVue), so the
// page needs no WebGL context (headless Chromium on SwiftShader has WebGPU, and the page tests
// read canvas pixels with getImageData), and the volume it shows is exactly what the library's
// own io.readNifti read. Interaction: wheel scrolls slices, Ctrl+wheel zooms at the pointer,
// drag pans (right button or Shift+drag in the box tool), double click resets the view; in the
// box tool a drag on the axial view draws a MedSAM box, in the point tools a click adds a point.
import type { Volume } from '../src/io/index.js';
import { VIEWS, pixelToVoxel, sliceRgba, sliceSize, viewSpecs, voxelIndex, voxelToPixel, type Overlay, type ViewName, type ViewSpec } from './slices.js';

export type Tool = 'navigate' | 'box' | 'point+' | 'point-';
export type OverlayName = 'label' | 'prediction' | 'medsam' | 'transunet';

export const OVERLAY_COLOURS: Record<OverlayName, readonly [number, number, number]> = {
  label: [40, 220, 60], // green
  prediction: [240, 50, 50], // red
  medsam: [60, 110, 255], // blue
  transunet: [255, 255, 255], // unused: a label map, each class in slices.ts classColour(c)
};

export interface CursorInfo {
  view: ViewName;
  ijk: [number, number, number];
  value: number;
  world: [number, number, number];
}

interface Pane {
  spec: ViewSpec;
  canvas: HTMLCanvasElement;
  slider: HTMLInputElement;
  caption: HTMLElement;
  off: HTMLCanvasElement;
  slice: number;
  zoom: number;
  pan: [number, number];
}

export interface ViewerEvents {
  onCursor?: (c: CursorInfo | null) => void;
  /** a box drawn on the axial view, in that slice's pixel coordinates [u0, v0, u1, v1] */
  onBox?: (slice: number, box: [number, number, number, number]) => void;
  onPoint?: (slice: number, point: [number, number], positive: boolean) => void;
  onSlice?: (view: ViewName, slice: number) => void;
}

export class Viewer {
  vol: Volume | null = null;
  specs: Record<ViewName, ViewSpec> | null = null;
  window = { width: 400, level: 40 };
  tool: Tool = 'navigate';
  readonly masks: Record<OverlayName, Uint8Array | null> = { label: null, prediction: null, medsam: null, transunet: null };
  readonly opacity: Record<OverlayName, number> = { label: 0.4, prediction: 0.5, medsam: 0.5, transunet: 0.5 };
  readonly visible: Record<OverlayName, boolean> = { label: true, prediction: true, medsam: true, transunet: true };
  /** the cursor voxel the crosshair marks */
  cursor: [number, number, number] = [0, 0, 0];
  /** the box being drawn (canvas pixels) and the last box sent (slice pixels) */
  private drag: { pane: Pane; mode: 'pan' | 'box'; x0: number; y0: number; x1: number; y1: number; pan0: [number, number] } | null = null;
  lastBox: { slice: number; box: [number, number, number, number] } | null = null;
  points: { slice: number; u: number; v: number; positive: boolean }[] = [];
  readonly panes: Record<ViewName, Pane>;

  constructor(
    root: HTMLElement,
    private events: ViewerEvents = {},
  ) {
    this.panes = Object.fromEntries(VIEWS.map((name) => [name, this.makePane(root, name)])) as Record<ViewName, Pane>;
  }

  private makePane(root: HTMLElement, name: ViewName): Pane {
    const box = document.createElement('figure');
    box.className = 'pane';
    box.dataset.view = name;
    const canvas = document.createElement('canvas');
    canvas.width = 384;
    canvas.height = 384;
    canvas.id = `view-${name}`;
    canvas.setAttribute('aria-label', `${name} slice`);
    canvas.tabIndex = 0;
    const bar = document.createElement('figcaption');
    const caption = document.createElement('span');
    const slider = document.createElement('input');
    slider.type = 'range';
    slider.min = '0';
    slider.id = `slice-${name}`;
    slider.setAttribute('aria-label', `${name} slice index`);
    bar.append(caption, slider);
    box.append(canvas, bar);
    root.append(box);
    const pane: Pane = { spec: null as unknown as ViewSpec, canvas, slider, caption, off: document.createElement('canvas'), slice: 0, zoom: 1, pan: [0, 0] };
    slider.addEventListener('input', () => this.setSlice(name, Number(slider.value)));
    canvas.addEventListener('wheel', (e) => this.onWheel(pane, e), { passive: false });
    canvas.addEventListener('pointerdown', (e) => this.onDown(pane, e));
    canvas.addEventListener('pointermove', (e) => this.onMove(pane, e));
    canvas.addEventListener('pointerup', (e) => this.onUp(pane, e));
    canvas.addEventListener('pointerleave', () => this.events.onCursor?.(null));
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    canvas.addEventListener('dblclick', () => {
      pane.zoom = 1;
      pane.pan = [0, 0];
      this.drawPane(pane);
    });
    canvas.addEventListener('keydown', (e) => {
      const d = { ArrowUp: 1, ArrowRight: 1, PageUp: 5, ArrowDown: -1, ArrowLeft: -1, PageDown: -5 }[e.key];
      if (d === undefined) return;
      e.preventDefault();
      this.setSlice(name, pane.slice + d);
    });
    return pane;
  }

  /** Shows a new volume; its label (if any) becomes the label overlay. Other overlays are cleared. */
  setVolume(vol: Volume, label: Volume | null): void {
    if (label && label.dims.join() !== vol.dims.join()) throw new Error(`the label's dims ${label.dims.join('x')} differ from the scan's ${vol.dims.join('x')}`);
    this.vol = vol;
    this.specs = viewSpecs(vol.affine);
    this.masks.label = label ? Uint8Array.from(label.data, (v) => (v > 0 ? 1 : 0)) : null;
    this.masks.prediction = null;
    this.masks.medsam = null;
    this.masks.transunet = null;
    this.lastBox = null;
    this.points = [];
    // start at the centre, or at the label's largest axial slice
    this.cursor = vol.dims.map((d) => Math.floor(d / 2)) as [number, number, number];
    if (this.masks.label) {
      const a = this.specs.axial.sliceAxis;
      const counts = new Array(vol.dims[a]).fill(0);
      const sums = [0, 0, 0];
      let n = 0;
      const [nx, ny] = vol.dims;
      this.masks.label.forEach((m, idx) => {
        if (!m) return;
        const ijk = [idx % nx, Math.floor(idx / nx) % ny, Math.floor(idx / (nx * ny))];
        counts[ijk[a]]++;
        ijk.forEach((c, i) => (sums[i] += c));
        n++;
      });
      if (n) {
        this.cursor = sums.map((s) => Math.round(s / n)) as [number, number, number];
        this.cursor[a] = counts.indexOf(Math.max(...counts));
      }
    }
    for (const name of VIEWS) {
      const p = this.panes[name];
      p.spec = this.specs[name];
      p.slider.max = String(vol.dims[p.spec.sliceAxis] - 1);
      p.slice = this.cursor[p.spec.sliceAxis];
      p.zoom = 1;
      p.pan = [0, 0];
    }
    this.draw();
  }

  setMask(name: OverlayName, mask: Uint8Array | null): void {
    this.masks[name] = mask;
    this.draw();
  }

  setSlice(view: ViewName, slice: number): void {
    const p = this.panes[view];
    if (!this.vol) return;
    const n = this.vol.dims[p.spec.sliceAxis];
    const s = Math.max(0, Math.min(n - 1, Math.round(slice)));
    if (s === p.slice && p.slider.value === String(s)) return;
    p.slice = s;
    this.cursor[p.spec.sliceAxis] = s;
    this.draw();
    this.events.onSlice?.(view, s);
  }

  slice(view: ViewName): number {
    return this.panes[view].slice;
  }

  draw(): void {
    for (const name of VIEWS) this.drawPane(this.panes[name]);
  }

  private overlays(): Overlay[] {
    return (['label', 'prediction', 'medsam', 'transunet'] as const)
      .filter((n) => this.masks[n] && this.visible[n])
      .map((n) => ({ mask: this.masks[n]!, rgb: OVERLAY_COLOURS[n], opacity: this.opacity[n], multiClass: n === 'transunet' }));
  }

  /** Canvas pixels per slice pixel (x, y), and the slice image's top-left corner on the canvas. */
  private layout(p: Pane): { sx: number; sy: number; ox: number; oy: number } {
    const { width, height, pxW, pxH } = sliceSize(this.vol!, p.spec);
    const fit = Math.min(p.canvas.width / (width * pxW), p.canvas.height / (height * pxH)) * p.zoom;
    const sx = fit * pxW;
    const sy = fit * pxH;
    return { sx, sy, ox: (p.canvas.width - width * sx) / 2 + p.pan[0], oy: (p.canvas.height - height * sy) / 2 + p.pan[1] };
  }

  private drawPane(p: Pane): void {
    const ctx = p.canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, p.canvas.width, p.canvas.height);
    if (!this.vol) return;
    const img = sliceRgba(this.vol, p.spec, p.slice, this.window.width, this.window.level, this.overlays());
    p.off.width = img.width;
    p.off.height = img.height;
    p.off.getContext('2d')!.putImageData(img, 0, 0);
    const { sx, sy, ox, oy } = this.layout(p);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(p.off, ox, oy, img.width * sx, img.height * sy);
    // crosshair through the cursor voxel (yellow, thin)
    const [u, v] = voxelToPixel(p.spec, this.vol.dims, this.cursor);
    ctx.strokeStyle = 'rgba(255, 220, 0, 0.55)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(ox + (u + 0.5) * sx, 0);
    ctx.lineTo(ox + (u + 0.5) * sx, p.canvas.height);
    ctx.moveTo(0, oy + (v + 0.5) * sy);
    ctx.lineTo(p.canvas.width, oy + (v + 0.5) * sy);
    ctx.stroke();
    if (p.spec.name === 'axial') {
      // the MedSAM box of this slice (drawn while dragging, then the last one sent) and its points
      ctx.strokeStyle = '#ff9d00';
      ctx.lineWidth = 2;
      if (this.drag?.mode === 'box' && this.drag.pane === p) {
        const d = this.drag;
        ctx.strokeRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
      } else if (this.lastBox && this.lastBox.slice === p.slice) {
        const [u0, v0, u1, v1] = this.lastBox.box;
        ctx.strokeRect(ox + u0 * sx, oy + v0 * sy, (u1 - u0) * sx, (v1 - v0) * sy);
      }
      for (const pt of this.points)
        if (pt.slice === p.slice) {
          ctx.fillStyle = pt.positive ? '#ffe000' : '#ff00d0';
          ctx.beginPath();
          ctx.arc(ox + (pt.u + 0.5) * sx, oy + (pt.v + 0.5) * sy, 4, 0, 2 * Math.PI);
          ctx.fill();
        }
    }
    const n = this.vol.dims[p.spec.sliceAxis];
    p.slider.value = String(p.slice);
    p.caption.textContent = `${p.spec.name} ${p.slice + 1}/${n}`;
  }

  /** Canvas event position -> slice pixel (u, v), fractional, and whether it lies on the slice. */
  private slicePixel(p: Pane, e: { offsetX: number; offsetY: number }): { u: number; v: number; inside: boolean } {
    const { sx, sy, ox, oy } = this.layout(p);
    const k = p.canvas.width / (p.canvas.clientWidth || p.canvas.width);
    const u = (e.offsetX * k - ox) / sx;
    const v = (e.offsetY * k - oy) / sy;
    const { width, height } = sliceSize(this.vol!, p.spec);
    return { u, v, inside: u >= 0 && v >= 0 && u < width && v < height };
  }

  private canvasXY(p: Pane, e: { offsetX: number; offsetY: number }): [number, number] {
    const k = p.canvas.width / (p.canvas.clientWidth || p.canvas.width);
    return [e.offsetX * k, e.offsetY * k];
  }

  private onWheel(p: Pane, e: WheelEvent): void {
    if (!this.vol) return;
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) {
      // zoom at the pointer: the slice point under it stays put
      const [x, y] = this.canvasXY(p, e);
      const f = Math.exp(-e.deltaY * 0.002);
      const z = Math.max(0.5, Math.min(20, p.zoom * f));
      const g = z / p.zoom;
      const cx = p.canvas.width / 2 + p.pan[0];
      const cy = p.canvas.height / 2 + p.pan[1];
      p.pan = [p.pan[0] + (x - cx) * (1 - g), p.pan[1] + (y - cy) * (1 - g)];
      p.zoom = z;
      this.drawPane(p);
      return;
    }
    this.setSlice(p.spec.name, p.slice + (e.deltaY > 0 ? -1 : 1));
  }

  private onDown(p: Pane, e: PointerEvent): void {
    if (!this.vol) return;
    p.canvas.focus();
    const [x, y] = this.canvasXY(p, e);
    const pan = e.button === 2 || e.button === 1 || (e.shiftKey && this.tool !== 'navigate');
    if (!pan && this.tool === 'box' && p.spec.name === 'axial') {
      this.drag = { pane: p, mode: 'box', x0: x, y0: y, x1: x, y1: y, pan0: p.pan };
      p.canvas.setPointerCapture(e.pointerId);
      return;
    }
    if (!pan && (this.tool === 'point+' || this.tool === 'point-') && p.spec.name === 'axial') {
      const s = this.slicePixel(p, e);
      if (!s.inside) return;
      const pt = { slice: p.slice, u: Math.floor(s.u), v: Math.floor(s.v), positive: this.tool === 'point+' };
      this.points = [...this.points.filter((q) => q.slice === p.slice), pt];
      this.drawPane(p);
      this.events.onPoint?.(p.slice, [pt.u, pt.v], pt.positive);
      return;
    }
    // navigate: a click moves the cursor (and the other views' slices); a drag pans
    this.drag = { pane: p, mode: 'pan', x0: x, y0: y, x1: x, y1: y, pan0: p.pan };
    p.canvas.setPointerCapture(e.pointerId);
  }

  private onMove(p: Pane, e: PointerEvent): void {
    if (!this.vol) return;
    const d = this.drag;
    if (d && d.pane === p) {
      [d.x1, d.y1] = this.canvasXY(p, e);
      if (d.mode === 'pan') p.pan = [d.pan0[0] + d.x1 - d.x0, d.pan0[1] + d.y1 - d.y0];
      this.drawPane(p);
    }
    const s = this.slicePixel(p, e);
    if (!s.inside) return this.events.onCursor?.(null);
    const ijk = pixelToVoxel(p.spec, this.vol.dims, p.slice, Math.floor(s.u), Math.floor(s.v));
    const w = this.vol.affine;
    const world = [0, 1, 2].map((r) => w[r][0] * ijk[0] + w[r][1] * ijk[1] + w[r][2] * ijk[2] + w[r][3]) as [number, number, number];
    this.events.onCursor?.({ view: p.spec.name, ijk, value: this.vol.data[voxelIndex(this.vol.dims, ijk)], world });
  }

  private onUp(p: Pane, e: PointerEvent): void {
    const d = this.drag;
    this.drag = null;
    if (!d || d.pane !== p || !this.vol) return;
    [d.x1, d.y1] = this.canvasXY(p, e);
    const moved = Math.hypot(d.x1 - d.x0, d.y1 - d.y0) > 3;
    if (d.mode === 'pan') {
      if (moved) return;
      p.pan = d.pan0;
      const s = this.slicePixel(p, e);
      if (!s.inside) return this.drawPane(p);
      this.cursor = pixelToVoxel(p.spec, this.vol.dims, p.slice, Math.floor(s.u), Math.floor(s.v));
      for (const name of VIEWS) {
        const q = this.panes[name];
        if (q !== p && q.slice !== this.cursor[q.spec.sliceAxis]) {
          q.slice = this.cursor[q.spec.sliceAxis];
          this.events.onSlice?.(name, q.slice);
        }
      }
      this.draw();
      return;
    }
    // a box, clipped to the slice, in slice pixel coordinates
    const { width, height } = sliceSize(this.vol, p.spec);
    const a = this.slicePixel(p, { offsetX: d.x0 / (p.canvas.width / (p.canvas.clientWidth || p.canvas.width)), offsetY: d.y0 / (p.canvas.width / (p.canvas.clientWidth || p.canvas.width)) });
    const b = this.slicePixel(p, e);
    const clip = (x: number, n: number) => Math.max(0, Math.min(n, x));
    const box: [number, number, number, number] = [
      clip(Math.min(a.u, b.u), width),
      clip(Math.min(a.v, b.v), height),
      clip(Math.max(a.u, b.u), width),
      clip(Math.max(a.v, b.v), height),
    ];
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) return this.drawPane(p);
    this.lastBox = { slice: p.slice, box };
    this.points = [];
    this.drawPane(p);
    this.events.onBox?.(p.slice, box);
  }
}
