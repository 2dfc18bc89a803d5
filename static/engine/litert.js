/* The LiteRT.js runtime (WebAssembly, one thread) and the models it runs: loading apart from using,
   as utils/faces/blazeface.py keeps its interpreters. Every tensor is freed in the function that made it. */
import { loadLiteRt, loadAndCompile, Tensor } from "../vendor/litertjs/core/index.js";

/* The one WebAssembly build the site serves (scripts/vendor_litertjs.py says why this one). */
const WASM_BUILD = "wasm/litert_wasm_compat_internal.js";
let runtime = null;

/* Load the runtime once per page; rejects with a sentence when this browser cannot run it. */
export function loadRuntime(vendorUrl) {
  if (typeof WebAssembly !== "object") {
    return Promise.reject(new Error("this browser cannot run WebAssembly"));
  }
  runtime = runtime || loadLiteRt(new URL(WASM_BUILD, vendorUrl).href).catch((error) => {
    runtime = null;
    throw new Error(`the LiteRT runtime could not be loaded (${error.message || error})`);
  });
  return runtime;
}

/* ``url``'s answer when the server has it; rejects with a one-line reason naming ``what`` otherwise. */
export async function fetchFile(url, what = url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`${what} could not be fetched (${error.message})`);
  }
  if (!response.ok) throw new Error(`${what} could not be loaded (the server answered ${response.status})`);
  return response;
}

/* One compiled .tflite model, run on float32 inputs of its fixed shape. */
export class Model {
  constructor(compiled, url) {
    this.compiled = compiled;
    this.url = url;
    const [input] = compiled.getInputDetails();
    this.inputName = input.name;
    this.inputShape = Array.from(input.shape);
  }

  /* Fetch and compile ``url``; a missing or broken file rejects with a one-line reason. */
  static async load(url) {
    const bytes = new Uint8Array(await (await fetchFile(url)).arrayBuffer());
    try {
      return new Model(await loadAndCompile(bytes, { accelerator: "wasm" }), url);
    } catch (error) {
      throw new Error(`${url} is not a model LiteRT can run (${error.message || error})`);
    }
  }

  /* The outputs for one input, copied out of WebAssembly's memory: an object ``name -> Float32Array``
     (the signature's output names), or only those ``wanted``. */
  async run(data, wanted = null) {
    const input = new Tensor(data, this.inputShape);
    let outputs;
    try {
      outputs = await this.compiled.run({ [this.inputName]: input });
    } finally {
      input.delete();
    }
    const copied = {};
    for (const [name, tensor] of Object.entries(outputs)) {
      if (!wanted || wanted.includes(name)) copied[name] = Float32Array.from(tensor.toTypedArray());
      tensor.delete();
    }
    return copied;
  }
}
