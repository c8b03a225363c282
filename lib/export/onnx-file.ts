/**
 * A graph as an ONNX file: a `ModelProto` encoded by `onnx-proto` (ONNX's schema compiled for
 * protobufjs), its weights inside it or, past protobuf's 2 GB limit (or on request), in ONNX's
 * external-data file beside it (`<name>.onnx_data`, each tensor at a 4 KiB-aligned offset, as
 * transformers.js and onnxruntime read it).
 * @internal
 * @module
 */
import type { onnx as Onnx } from 'onnx-proto';

import { onnx } from './graph.js';
import type { Graph, Initializer, ValueSpec } from './graph.js';

/** The opsets rils writes: 17 (LayerNormalization) to 21. */
export const OPSETS = { min: 17, max: 21 } as const;
/** The IR version each opset came with (ONNX's VERSION_TABLE). */
const IR_VERSION: Readonly<Record<number, number>> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };
/** Past this many bytes of weights a file keeps them outside: a protobuf message is at most 2 GiB. */
export const INLINE_LIMIT = 2 ** 31 - 2 ** 26;
/** Tensors smaller than this stay inside even when the rest is outside (onnx's default threshold). */
const SMALL = 1024;
const ALIGN = 4096;

/** An encoded model: the .onnx bytes, and the external-data file's name and parts when it has one. */
export interface EncodedModel {
  model: Uint8Array;
  data?: { file: string; parts: Uint8Array[] } | undefined;
}

function valueInfo(v: ValueSpec): Onnx.IValueInfoProto {
  const dim = v.dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name: v.name, type: { tensorType: { elemType: v.dataType, shape: { dim } } } };
}

/** The initializers as TensorProtos; with `dataFile`, the large ones point into it and their bytes are returned in order. */
function tensors(
  initializers: readonly Initializer[],
  dataFile: string | undefined,
): { protos: Onnx.ITensorProto[]; parts: Uint8Array[] } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const protos = initializers.map((t): Onnx.ITensorProto => {
    const base = { name: t.name, dataType: t.dataType, dims: t.dims };
    if (dataFile === undefined || t.bytes.byteLength < SMALL) return { ...base, rawData: t.bytes };
    const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
    if (pad) parts.push(new Uint8Array(pad));
    offset += pad;
    const entry = (key: string, value: string | number) => ({ key, value: String(value) });
    parts.push(t.bytes);
    const proto = {
      ...base,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [entry('location', dataFile), entry('offset', offset), entry('length', t.bytes.byteLength)],
    };
    offset += t.bytes.byteLength;
    return proto;
  });
  return { protos, parts };
}

/** The bytes of all the graph's weights. */
export function weightBytes(g: Graph): number {
  return g.initializers.reduce((n, t) => n + t.bytes.byteLength, 0);
}

/**
 * Encodes `g` as an ONNX model named `name`; `external` puts its weights in `<name>.onnx_data` (the file
 * name the model refers to, relative to it).
 */
export function encodeModel(g: Graph, name: string, external: boolean): EncodedModel {
  const dataFile = external ? `${name}.onnx_data` : undefined;
  const { protos, parts } = tensors(g.initializers, dataFile);
  const model = onnx.ModelProto.encode({
    irVersion: IR_VERSION[g.opset]!,
    producerName: 'rils',
    opsetImport: [{ domain: '', version: g.opset }],
    graph: {
      name,
      node: g.nodes,
      initializer: protos,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  }).finish();
  return { model, data: dataFile ? { file: dataFile, parts } : undefined };
}
