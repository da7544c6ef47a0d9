// The live training chart: V-Net's Dice loss and the batch's hard Dice per step, drawn by uPlot
// (two series on one 0..1 axis), appended to as the worker reports steps.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class TrainingChart {
  private plot: uPlot;
  private data: [number[], number[], number[]] = [[], [], []];

  constructor(root: HTMLElement) {
    this.plot = new uPlot(
      {
        width: 360,
        height: 180,
        scales: { x: { time: false }, y: { range: [0, 1] } },
        axes: [{ label: 'step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],
        series: [{ label: 'step' }, { label: 'loss', stroke: '#d9480f', width: 2 }, { label: 'training Dice', stroke: '#2f9e44', width: 2 }],
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
