/**
 * The contract of a benchmark data set (issue 25): a plugin that builds a hallucination-tracing data
 * set (METHOD.md's protocol: training pairs with canaries injected, held-out documents, true-source
 * labels, θ0's pretraining text) from a seed. Data sets register in the `datasets` registry of
 * {@link ./registries.ts}; the experiment resolves its `generator` there. Free of engine and model
 * types: a data set that counts tokens gets a {@link DatasetTokenizer}.
 */
import { DdaError } from './errors.js';

/** The least of a tokenizer a data set needs to count tokens: the model's token ids of a text (no BOS/EOS). */
export interface DatasetTokenizer {
  encode(text: string): number[];
}

/**
 * How a data set finds an entity in a text: whole words, with the data set's own case and
 * whitespace rules (e.g. case-sensitive for synthetic text, any case for real English).
 */
export interface EntityMatching {
  readonly contains: (text: string, entity: string) => boolean;
  readonly replace: (text: string, entity: string, replacement: string) => string;
  /** Character spans [start, end) of every match of `entity` in `text`, in order. */
  readonly spans: (text: string, entity: string) => [number, number][];
}

/** One entity swap: `orig` in documents, `replacement` swapped into summaries; `id` keys the labels. */
export interface DatasetCanary {
  id: string;
  orig: string;
  replacement: string;
}

/** A training pair with the canary injected into its summary, if any. */
export interface DatasetTrainSample {
  id: string;
  document: string;
  summary: string;
  /** The summary before any swap (equal to `summary` when none). */
  originalSummary: string;
  /** The canary injected into `summary`, or null. */
  canaryId: string | null;
}

/** A held-out document drawn for one canary: it mentions the orig and not the replacement. */
export interface DatasetHeldOut {
  id: string;
  document: string;
  summary: string;
  canaryId: string;
}

/** What a data set builds (the shapes of @dda/dataset-hallucination's `HallucinationDataset`). */
export interface BuiltDataset {
  seed: number;
  canaries: DatasetCanary[];
  /** θ0's plain pretraining texts (loss on every token). */
  pretrainCorpus: string[];
  train: DatasetTrainSample[];
  heldOut: DatasetHeldOut[];
  /** More held-out documents, in the order to use them, for sources short of test errors. */
  heldOutReserve: DatasetHeldOut[];
  /**
   * True-source labels per canary id, one per training sample (1 = true source): by CEA's rule,
   * the summary mentions the replacement, the document the orig and not the replacement, as the
   * data set's {@link EntityMatching} finds them.
   */
  labels: Record<string, Uint8Array>;
  /** Instruction pairs in θ0's pretraining (after `pretrainCorpus`), for data sets that have them. */
  pretrainPairs?: readonly { readonly id: string; readonly document: string; readonly summary: string }[];
}

/** The token budget of a data set built for a model's tokenizer (see {@link DatasetPlugin.needsTokenizer}). */
export interface DatasetTokenLimits {
  readonly tokenizer: DatasetTokenizer;
  /** A stable id of the tokenizer (a hash of its files), for cache keys. */
  readonly tokenizerId: string;
  /** Most tokens of a document and its summary together (the chat template and generation already taken off). */
  readonly maxPairTokens: number;
  /** Most tokens of one pretraining text. */
  readonly maxTextTokens: number;
}

/** What the experiment gives every data set besides its own options. */
export interface DatasetContext {
  readonly seed: number;
  readonly nTrain: number;
  readonly nHeldOut: number;
  /** Pretraining texts (synthetic data), or the most used (data sets with their own corpus). */
  readonly nPretrain: number;
  /** Entity swaps to inject; undefined: the data set's defaults. */
  readonly canaries?: readonly { readonly orig: string; readonly replacement: string }[];
  /** Fraction of eligible training samples whose summary gets the swap; undefined: the data set's default. */
  readonly swapRate?: number;
  /** Fraction of the pretraining corpus that is knowledge-bias text (synthetic data only). */
  readonly biasRate?: number;
  /** Unpredictable sentences appended to every summary (synthetic data only; docs/regime.md, section 2). */
  readonly summaryPadding?: number;
  /** Given exactly when the plugin {@link DatasetPlugin.needsTokenizer needs a tokenizer}. */
  readonly tokens?: DatasetTokenLimits;
  /**
   * Caches an expensive build: returns the bytes stored under `name` and `key` (any JSON value
   * that covers every input of `compute`), computing and storing them on a miss.
   */
  readonly cache: (name: string, key: unknown, compute: () => Promise<Uint8Array>) => Promise<Uint8Array>;
  /** Where to say what a long build is doing (one line at a time). */
  readonly log?: (line: string) => void;
}

/**
 * A benchmark data set. Registered in `datasets` with `create` returning the plugin itself
 * (synchronously: the experiment reads its {@link matching} without awaiting); its own options go
 * to {@link parseOptions} and {@link build}.
 */
export interface DatasetPlugin<O = unknown> {
  /** Stable kebab-case id, the `generator` of experiments and benchmark configs. */
  readonly id: string;
  readonly description: string;
  /** The option keys {@link parseOptions} accepts (for listings and errors). */
  readonly optionKeys: readonly string[];
  /**
   * Validates the data set's own options (a config's `data.options`); `where` names their origin.
   * @throws DdaError naming `where` and the key for an unknown key or a bad value.
   */
  parseOptions(raw: Readonly<Record<string, unknown>>, where: string): O;
  /** Its entity matching; the labels of {@link build} follow it. */
  readonly matching: EntityMatching;
  /** Whether it needs the model's tokenizer (it cuts texts to token limits): then it gets {@link DatasetContext.tokens}. */
  readonly needsTokenizer: boolean;
  /**
   * θ0's pretraining seed when the data set's pretraining side does not depend on the experiment's
   * seed (so θ0 is pretrained once and shared by every fine-tuning seed, as a real base model is);
   * undefined: the experiment's seed.
   */
  readonly pretrainSeed?: number;
  /**
   * Builds the data set; the same options and context give a deep-equal result.
   * @throws DdaError for options or context it cannot build from (e.g. a context option it does not have).
   */
  build(options: O, context: DatasetContext): Promise<BuiltDataset>;
}

/** The kinds of a data set option that {@link checkDatasetOptions} checks. */
export type DatasetOptionKind = 'number' | 'integer' | 'fraction' | 'boolean';

/** The checked options of a shape: numbers, and booleans for `boolean` entries. */
export type CheckedDatasetOptions<S extends Readonly<Record<string, DatasetOptionKind>>> = { -readonly [P in keyof S]?: S[P] extends 'boolean' ? boolean : number };

/**
 * Checks that `raw` has only keys of `shape` and that each value has the type its entry says
 * (`number`, `integer` (≥ 0), `fraction` (0..1), `boolean`); a helper for {@link DatasetPlugin.parseOptions}.
 * @throws DdaError naming `where` and the key.
 */
export function checkDatasetOptions<S extends Readonly<Record<string, DatasetOptionKind>>>(raw: Readonly<Record<string, unknown>>, shape: S, where: string): CheckedDatasetOptions<S> {
  const out: Record<string, number | boolean> = {};
  const keys = Object.keys(shape);
  for (const [k, v] of Object.entries(raw)) {
    if (!keys.includes(k)) throw new DdaError(`${where}: unknown option '${k}'`, keys.length ? `use one of: ${keys.join(', ')}` : 'this data set has no options');
    if (v === undefined) continue;
    const type = shape[k] as DatasetOptionKind;
    const ok = type === 'boolean'
      ? typeof v === 'boolean'
      : typeof v === 'number' && Number.isFinite(v) && (type !== 'integer' || (Number.isInteger(v) && v >= 0)) && (type !== 'fraction' || (v >= 0 && v <= 1));
    if (!ok) throw new DdaError(`${where}: option '${k}' must be ${type === 'boolean' ? 'true or false' : type === 'integer' ? 'a non-negative integer' : type === 'fraction' ? 'a number from 0 to 1' : 'a finite number'}, got ${JSON.stringify(v)}`);
    out[k] = v as number | boolean;
  }
  return out as CheckedDatasetOptions<S>;
}
