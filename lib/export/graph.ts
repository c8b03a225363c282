/**
 * An ONNX graph under construction: nodes, weights and constants, named as they are added, held as
 * ONNX's own protobuf messages (`onnx-proto`, generated from ONNX's schema). The towers
 * (lib/export/towers.ts) are written with it; lib/export/onnx-file.ts encodes the result.
 * @internal
 * @module
 */
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';

import { toFloat16 } from './float16.js';

/** ONNX's message classes and enums. */
export const onnx = onnxProto.onnx;

/** ONNX's element types used here (TensorProto.DataType). */
export const FLOAT = 1,
  INT32 = 6,
  INT64 = 7,
  FLOAT16 = 10;

/** How the graph stores its weights and computes: fp32, or fp16 between fp32 inputs and outputs. */
export type ExportDtype = 'fp32' | 'fp16';

/** An attribute value: an int, a float (`{ f }`), a list of ints or a tensor. */
export type Attribute = number | { f: number } | number[] | { tensor: Onnx.ITensorProto };

/** A weight or constant: its name, element type, dims and bytes (little-endian). */
export interface Initializer {
  name: string;
  dataType: number;
  dims: number[];
  bytes: Uint8Array;
}

/** A graph input or output: a name, an element type and dims (a string is a symbolic, dynamic dim). */
export interface ValueSpec {
  name: string;
  dataType: number;
  dims: (number | string)[];
}

function attribute(name: string, value: Attribute): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('f' in value) return { name, type: T.FLOAT, f: value.f };
  return { name, type: T.TENSOR, t: value.tensor };
}

/** An ONNX graph being built for one opset and one dtype. */
export class Graph {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: ValueSpec[] = [];
  readonly outputs: ValueSpec[] = [];
  /** The element type of the graph's floating-point values. */
  readonly float: number;
  #count = 0;
  readonly #constants = new Map<string, string>();

  constructor(
    readonly dtype: ExportDtype,
    readonly opset: number,
  ) {
    this.float = dtype === 'fp16' ? FLOAT16 : FLOAT;
  }

  /** A fresh value name. */
  name(prefix: string): string {
    return `${prefix}_${this.#count++}`;
  }

  /** Adds one node; returns its output names (`outputs` of them). */
  ops(type: string, inputs: string[], attributes: Record<string, Attribute> = {}, outputs = 1): string[] {
    const names = Array.from({ length: outputs }, () => this.name(type));
    this.nodes.push({
      opType: type,
      name: this.name(`${type}_node`),
      input: inputs,
      output: names,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return names;
  }

  /** Adds one node with one output; returns its name. */
  op(type: string, inputs: string[], attributes: Record<string, Attribute> = {}): string {
    return this.ops(type, inputs, attributes)[0]!;
  }

  /** Renames a value to `name` (a graph output's name) with an Identity node. */
  output(value: string, name: string, dims: (number | string)[], dataType = FLOAT): void {
    const typed = dataType === FLOAT && this.float !== FLOAT ? this.op('Cast', [value], { to: FLOAT }) : value;
    this.nodes.push({ opType: 'Identity', name: this.name('Identity_node'), input: [typed], output: [name] });
    this.outputs.push({ name, dataType, dims });
  }

  /** Declares a graph input; float inputs are cast to the graph's float type. Returns the value to read. */
  input(name: string, dataType: number, dims: (number | string)[]): string {
    this.inputs.push({ name, dataType, dims });
    return dataType === FLOAT && this.float !== FLOAT ? this.op('Cast', [name], { to: this.float }) : name;
  }

  /** A weight in the graph's float type. */
  weight(prefix: string, data: Float32Array, dims: number[]): string {
    const name = this.name(prefix);
    const values = this.float === FLOAT16 ? toFloat16(data) : data;
    this.initializers.push({
      name,
      dataType: this.float,
      dims,
      bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
    return name;
  }

  /** A float constant in the graph's float type (a scalar when `dims` is []), shared by equal uses. */
  floats(values: number[], dims: number[] = [values.length]): string {
    return this.#constant(`f${dims.join('x')}:${values.join(',')}`, () =>
      this.weight('const', Float32Array.from(values), dims),
    );
  }

  /** An int64 constant (a 1-D list unless `dims` says otherwise), shared by equal uses. */
  ints(values: number[], dims: number[] = [values.length]): string {
    return this.#constant(`i${dims.join('x')}:${values.join(',')}`, () => {
      const name = this.name('const');
      const data = BigInt64Array.from(values, (v) => BigInt(v));
      this.initializers.push({ name, dataType: INT64, dims, bytes: new Uint8Array(data.buffer) });
      return name;
    });
  }

  #constant(key: string, make: () => string): string {
    let name = this.#constants.get(key);
    if (name === undefined) this.#constants.set(key, (name = make()));
    return name;
  }

  /** x @ w + b, with w given as PyTorch's Linear weight `[out, in]` (stored transposed) or as `[in, out]`. */
  linear(x: string, w: { data: Float32Array; shape: number[]; transposed?: boolean }, bias?: Float32Array): string {
    const [rows, cols] = w.shape as [number, number];
    const matrix = w.transposed ? w.data : transpose(w.data, rows, cols);
    const dims = w.transposed ? [rows, cols] : [cols, rows];
    const y = this.op('MatMul', [x, this.weight('weight', matrix, dims)]);
    return bias ? this.op('Add', [y, this.weight('bias', bias, [bias.length])]) : y;
  }

  /** LayerNormalization over the last axis (opset 17). */
  layerNorm(x: string, weight: Float32Array, bias: Float32Array, epsilon: number): string {
    const scale = this.weight('ln_weight', weight, [weight.length]);
    return this.op('LayerNormalization', [x, scale, this.weight('ln_bias', bias, [bias.length])], {
      axis: -1,
      epsilon: { f: epsilon },
    });
  }

  /** The mean over `axis`, dropping it (ReduceMean's axes are an attribute before opset 18, an input from 18). */
  mean(x: string, axis: number): string {
    return this.opset < 18
      ? this.op('ReduceMean', [x], { axes: [axis], keepdims: 0 })
      : this.op('ReduceMean', [x, this.ints([axis])], { keepdims: 0 });
  }

  /** `x[..., start:end, ...]` along `axis` (end may be a value name holding a 1-D int64). */
  slice(x: string, axis: number, start: number, end: number | string): string {
    const ends = typeof end === 'number' ? this.ints([end]) : end;
    return this.op('Slice', [x, this.ints([start]), ends, this.ints([axis])]);
  }

  /** Dim `axis` of `x`'s shape as a 1-D int64 of one element. */
  dim(x: string, axis: number): string {
    return this.slice(this.op('Shape', [x]), 0, axis, axis + 1);
  }
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}
