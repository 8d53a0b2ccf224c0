import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';

/**
 * What weight files a model folder holds, and clear errors for the ones this package cannot read
 * (PyTorch pickles, GGUF, TensorFlow, Flax, Git LFS pointers), each with how to convert it.
 */

/** First line of a Git LFS pointer file (what a clone without `git lfs` leaves in place of a large file). */
export const GIT_LFS_SIGNATURE = 'version https://git-lfs.github.com/spec/v1';

/** Whether the first bytes of a file are those of a Git LFS pointer. */
export function isGitLfsPointer(head: Uint8Array): boolean {
  const sig = new TextEncoder().encode(GIT_LFS_SIGNATURE);
  if (head.length < sig.length) return false;
  for (let k = 0; k < sig.length; k++) if (head[k] !== sig[k]) return false;
  return true;
}

/** Whether the file at `path` is a Git LFS pointer (reads its first bytes only). */
export function fileIsGitLfsPointer(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(GIT_LFS_SIGNATURE.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return isGitLfsPointer(head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

export function gitLfsPointerError(path: string): DdaError {
  return new DdaError(
    `${path}: is a Git LFS pointer (a small text file starting '${GIT_LFS_SIGNATURE}'), not the file itself`,
    'the repository was cloned without Git LFS: run `git lfs install && git lfs pull` in it (or download the files with `huggingface-cli download <repo> --local-dir <folder>`)',
  );
}

/** Files of training runs that are not model weights (Trainer checkpoints carry them): never named as weights. */
const NOT_WEIGHTS = /^(training_args\.bin|optimizer\.(pt|bin)|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth)$/;

/** A kind of weight file this package cannot read, how to recognise it, and how to convert it. */
interface UnreadableKind {
  readonly what: string;
  readonly test: (file: string) => boolean;
  readonly recipe: (dir: string, file: string) => string;
}

const HF_RESAVE = (dir: string, from: string): string =>
  `python3 -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('${dir}', torch_dtype='auto'${from}).save_pretrained('${dir}', safe_serialization=True)"`;

const UNREADABLE: readonly UnreadableKind[] = [
  {
    what: 'PEFT adapter weights (a LoRA adapter, not a base model)',
    test: (f) => /^adapter_model\.(safetensors|bin)$/.test(f),
    recipe: () => 'point to the base model folder that adapter_config.json names (base_model_name_or_path), and load this folder as its adapter',
  },
  {
    what: 'a sharded PyTorch checkpoint index',
    test: (f) => f === 'pytorch_model.bin.index.json',
    recipe: (dir) => `convert the shards to safetensors with transformers: ${HF_RESAVE(dir, '')}`,
  },
  {
    what: 'PyTorch pickle weights',
    test: (f) => /\.(bin|pt|pth)$/.test(f),
    recipe: (dir, f) =>
      /^consolidated\..*\.pth$/.test(f)
        ? "this is Meta's or Mistral's original layout (consolidated.*.pth + params.json): convert it with transformers' convert_llama_weights_to_hf.py or convert_mistral_weights_to_hf.py"
        : /^pytorch_model/.test(f)
          ? `convert with transformers: ${HF_RESAVE(dir, '')}`
          : `a state dict with Hugging Face tensor names converts with: python3 -c "import torch; from safetensors.torch import save_file; sd = torch.load('${join(dir, f)}', map_location='cpu'); save_file({k: v.clone().contiguous() for k, v in sd.items()}, '${join(dir, 'model.safetensors')}', metadata={'format': 'pt'})"`,
  },
  {
    what: 'GGUF (llama.cpp) weights',
    test: (f) => f.endsWith('.gguf'),
    recipe: (dir, f) =>
      `use the original Hugging Face safetensors release of the model, or dequantise with transformers (pip install gguf): python3 -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('${dir}', gguf_file='${f}').save_pretrained('${dir}', safe_serialization=True)"`,
  },
  {
    what: 'TensorFlow (Keras h5) weights',
    test: (f) => f.endsWith('.h5'),
    recipe: (dir) => `convert with transformers (needs tensorflow): ${HF_RESAVE(dir, ', from_tf=True')}`,
  },
  {
    what: 'Flax (msgpack) weights',
    test: (f) => f.endsWith('.msgpack'),
    recipe: (dir) => `convert with transformers (needs flax): ${HF_RESAVE(dir, ', from_flax=True')}`,
  },
  {
    what: 'safetensors files without the Hugging Face names (model.safetensors, or shards with model.safetensors.index.json)',
    test: (f) => f.endsWith('.safetensors'),
    recipe: (_dir, f) =>
      /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)
        ? 'the shards are here but model.safetensors.index.json is missing: copy it from the checkpoint'
        : /^consolidated/.test(f)
          ? "this is Mistral's original layout: convert it with transformers' convert_mistral_weights_to_hf.py"
          : 'rename a single-file checkpoint to model.safetensors (its tensors must have the Hugging Face names)',
  },
];

/** What {@link findWeightFiles} found. */
export type WeightFilesFound = 'safetensors' | 'none';

/**
 * Classifies the weights of a model folder. Returns `'safetensors'` when it has
 * `model.safetensors.index.json` or `model.safetensors` (Git LFS pointers among them are caught
 * when they are read), `'none'` when it has no weight files at all. Throws a DdaError naming the
 * file(s) and giving a conversion recipe when the only weights are in a format this package
 * cannot read: PyTorch pickles (`*.bin`, `*.pt`, `*.pth`, `pytorch_model.bin.index.json`),
 * GGUF, TensorFlow `*.h5`, Flax `*.msgpack`, safetensors under other names, a PEFT adapter in place
 * of a base model, or a Git LFS pointer in place of any of them. Trainer files that are not weights
 * (training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth) are ignored.
 */
export function findWeightFiles(dir: string): WeightFilesFound {
  if (existsSync(join(dir, 'model.safetensors.index.json')) || existsSync(join(dir, 'model.safetensors'))) return 'safetensors';
  if (!existsSync(dir)) return 'none';
  const files = readdirSync(dir).filter((f) => !NOT_WEIGHTS.test(f) && statSync(join(dir, f)).isFile()).sort();
  for (const kind of UNREADABLE) {
    const hits = files.filter(kind.test);
    if (!hits.length) continue;
    const first = hits[0] as string;
    const lfs = hits.find((f) => fileIsGitLfsPointer(join(dir, f)));
    if (lfs) throw gitLfsPointerError(join(dir, lfs));
    const list = hits.slice(0, 4).join(', ') + (hits.length > 4 ? ` and ${hits.length - 4} more` : '');
    throw new DdaError(
      `${dir}: the weights are ${kind.what} (${list}), which this loader cannot read; it reads Hugging Face safetensors (model.safetensors, or shards with model.safetensors.index.json)`,
      kind.recipe(dir, first),
    );
  }
  return 'none';
}
