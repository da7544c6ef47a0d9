// A live training chart: a model's loss and its training Dice per step, drawn by uPlot (two series
// on one axis from 0 to 1, or to the largest loss where cross-entropy goes above 1), appended to as
// the worker reports steps. The series are named by the model (V-Net: Dice loss and the batch's
// hard Dice; TransUNet: 0.5 CE + 0.5 Dice loss and the soft Dice).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class TrainingChart {
  private plot: uPlot;
  private data: [number[], number[], number[]] = [[], [], []];

  constructor(root: HTMLElement, names: { loss: string; dice: string } = { loss: 'loss', dice: 'training Dice' }) {
    this.plot = new uPlot(
      {
        width: 360,
        height: 180,
        scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ label: 'step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],
        series: [{ label: 'step' }, { label: names.loss, stroke: '#d9480f', width: 2 }, { label: names.dice, stroke: '#2f9e44', width: 2 }],
        legend: { show: true },
      },
      this.data,
      root,
    );
  }

  add(step: number, loss: number, dice: number): void {
    this.data[0].push(step);
    this.data[1].push(loss);
    this.data[2].push(dice);
    this.plot.setData(this.data);
  }

  clear(): void {
    this.data = [[], [], []];
    this.plot.setData(this.data);
  }

  get points(): number {
    return this.data[0].length;
  }
}
