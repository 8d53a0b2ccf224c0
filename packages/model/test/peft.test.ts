import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LORA, SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, parseAdapterConfig,
  readPeftAdapter, readSafetensors, toAdapterConfig, writePeftAdapter, writeSafetensors,
  type DecoderConfig, type LoraConfig, type TensorMap,
} from '@dda/model';

const root = mkdtempSync(join(tmpdir(), 'dda-peft-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `a${n++}`);

const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: 24 }, (_, i) => `w${i}`)]);
const config: DecoderConfig = { ...TINY_PRESETS['qwen2-tiny']!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24 };
const lora: LoraConfig = { rank: 4, alpha: 8, targets: ['q', 'v', 'down'] };

/** LoRA weights with B ≠ 0, so that the adapter changes the model. */
function trainedLora(c: DecoderConfig, l: LoraConfig, seed: number): TensorMap {
  const w = initLoraWeights(c, l, seed);
  for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(i + seed)));
  return w;
}

describe('PEFT adapter_config.json', () => {
  it('writes the PEFT fields and reads them back', () => {
    const json = toAdapterConfig(lora, 'models/qwen2-tiny');
    expect(json).toEqual({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'models/qwen2-tiny', r: 4, lora_alpha: 8, lora_dropout: 0,
      target_modules: ['q_proj', 'v_proj', 'down_proj'], bias: 'none', fan_in_fan_out: false, use_rslora: false, use_dora: false,
      modules_to_save: null, inference_mode: true,
    });
    expect(parseAdapterConfig(json)).toEqual({ config: lora, baseModelNameOrPath: 'models/qwen2-tiny', modulesToSave: null });
  });

  it('refuses an adapter of another task than causal language modelling (task_type), naming it', () => {
    const json = toAdapterConfig(lora, 'models/qwen2-tiny');
    expect(() => parseAdapterConfig({ ...json, task_type: 'SEQ_CLS' })).toThrow(/'task_type' is "SEQ_CLS": this adapter was trained for another task than causal language modelling/);
    expect(parseAdapterConfig({ ...json, task_type: null }).config).toEqual(lora);
  });

  it('reads a config as PEFT writes it (module order, empty extras, all-linear)', () => {
    const peft = {
      alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'Qwen/Qwen2-0.5B', bias: 'none', fan_in_fan_out: false, inference_mode: true,
      init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: 16,
      lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null, peft_type: 'LORA', r: 8, rank_pattern: {},
      revision: null, target_modules: ['v_proj', 'q_proj'], task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
    };
    expect(parseAdapterConfig(peft).config).toEqual({ rank: 8, alpha: 16, targets: ['q', 'v'] });
    expect(parseAdapterConfig({ ...peft, target_modules: 'all-linear' }).config.targets).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
  });

  it('reads target_modules entries as PEFT matches them: the full module name, or any suffix of it after a dot', () => {
    const base = toAdapterConfig(lora);
    expect(config.numLayers).toBeGreaterThanOrEqual(2);
    // Suffixes that every layer's module has map to the same targets as the bare names.
    expect(parseAdapterConfig({ ...base, target_modules: ['self_attn.q_proj', 'mlp.down_proj'] }).config).toEqual({ rank: 4, alpha: 8, targets: ['q', 'down'] });
    expect(parseAdapterConfig({ ...base, target_modules: ['self_attn.q_proj', 'mlp.down_proj', 'v_proj'] }, 'a.json', config).config).toEqual(lora);
    // An entry naming one layer's module selects that module only.
    const one = parseAdapterConfig({ ...base, target_modules: ['layers.1.self_attn.q_proj', 'v_proj'] }, 'a.json', config).config;
    expect(one.modules?.map((m) => `${m.layer}${m.target}`).sort()).toEqual([...Array.from({ length: config.numLayers }, (_, l) => `${l}v`), '1q'].sort());
    expect(() => parseAdapterConfig({ ...base, target_modules: ['layers.1.self_attn.q_proj'] })).toThrow('read it with the base model');
    // PEFT applies layers_to_transform to suffix matches only: a full module name is selected as is.
    const exact = parseAdapterConfig({ ...base, target_modules: ['model.layers.0.self_attn.q_proj', 'v_proj'], layers_to_transform: [1] }, 'a.json', config).config;
    expect(exact.modules?.map((m) => `${m.layer}${m.target}`).sort()).toEqual(['0q', '1v']);
    // Entries that match no module are refused, naming the module names that exist.
    expect(() => parseAdapterConfig({ ...base, target_modules: ['q_proj', 'mlp.q_proj'] })).toThrow(/target module 'mlp\.q_proj' matches no module of the model: PEFT selects a module whose full name equals an entry or ends with '\.' \+ the entry.*model\.layers\.<i>\.self_attn\.\{q,k,v,o\}_proj/);
    expect(() => parseAdapterConfig({ ...base, target_modules: ['attn.q_proj'] })).toThrow("target module 'attn.q_proj' matches no module");
    expect(() => parseAdapterConfig({ ...base, target_modules: [`layers.${config.numLayers}.self_attn.q_proj`] }, 'a.json', config)).toThrow(`target_modules 'layers.${config.numLayers}.self_attn.q_proj' matches no module of this model, which has ${config.numLayers} layers`);
    // Modules LoRA cannot adapt here stay unsupported.
    expect(() => parseAdapterConfig({ ...base, target_modules: ['self_attn', 'q_proj'] })).toThrow("unsupported target module 'self_attn'");
  });

  it('names what it cannot compute', () => {
    const base = toAdapterConfig(lora);
    expect(() => parseAdapterConfig({ ...base, peft_type: 'IA3' })).toThrow('peft_type "IA3" is not supported');
    expect(() => parseAdapterConfig({ ...base, bias: 'lora_only' })).toThrow('the adapter uses trained bias vectors (bias "lora_only"), which is not supported');
    expect(() => parseAdapterConfig({ ...base, target_modules: ['q_proj', 'embed_tokens', 'lm_head'] })).toThrow("unsupported target modules 'embed_tokens', 'lm_head'");
    expect(() => parseAdapterConfig({ ...base, layer_replication: [[0, 1]] })).toThrow('the adapter uses layers replicated from the base model (layer_replication [[0,1]])');
    expect(() => parseAdapterConfig({ ...base, some_future_field: 3 })).toThrow("unsupported field 'some_future_field' = 3");
    expect(() => parseAdapterConfig({ ...base, r: 0 })).toThrow("'r' must be a positive integer, got 0");
  });
});

describe('PEFT adapter folders', () => {
  it('round-trips bit-identically (@dda/backend-tfjs checks the adapted model)', () => {
    const dir = fresh();
    const w = trainedLora(config, lora, 3);
    writePeftAdapter(dir, lora, w, 'base');
    const back = readPeftAdapter(dir, config);
    expect(back.config).toEqual(lora);
    expect(back.baseModelNameOrPath).toBe('base');
    expect([...back.weights.keys()]).toEqual([...w.keys()]);
    for (const [k, t] of w) expect(Buffer.from(back.weights.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    expect(readSafetensors(readFileSync(join(dir, 'adapter_model.safetensors')), 'a').metadata).toEqual({ format: 'pt' });
    // PEFT tensor names: base_model.model.<module>.lora_A.weight.
    expect([...w.keys()][0]).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  });

  it('an adapter that does not fit the model gets a clear error', () => {
    const w = trainedLora(config, lora, 3);
    // Another rank than adapter_config.json says.
    let dir = fresh();
    writePeftAdapter(dir, { ...lora, rank: 2 }, w);
    expect(() => readPeftAdapter(dir, config)).toThrow(/tensor 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' has shape \[4, 16\], this model needs \[2, 16\] \(its rank is 4, the adapter config says r = 2\)/);
    // Trained for a wider model.
    dir = fresh();
    writePeftAdapter(dir, lora, trainedLora({ ...config, hiddenSize: 32 }, lora, 1));
    expect(() => readPeftAdapter(dir, config)).toThrow(/has shape \[4, 32\], this model needs \[4, 16\] \(the adapter was trained for a model of another size\)/);
    // Saved under DeepSpeed ZeRO-3 without gathering: every tensor has shape [0].
    dir = fresh();
    writePeftAdapter(dir, lora, new Map([...w].map(([k]) => [k, { shape: [0], data: new Float32Array(0) }])));
    expect(() => readPeftAdapter(dir, config)).toThrow(/has shape \[0\], this model needs \[4, 16\] \(the tensor is empty: the adapter was saved under DeepSpeed ZeRO-3 without gathering its partitioned weights \(set stage3_gather_16bit_weights_on_model_save: true/);
    // More modules than target_modules lists.
    dir = fresh();
    writePeftAdapter(dir, { ...lora, targets: ['q', 'v'] }, w);
    expect(() => readPeftAdapter(dir, config)).toThrow(/has tensors this model and adapter config do not use: 'base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight'/);
    // More layers than the model.
    dir = fresh();
    writePeftAdapter(dir, lora, trainedLora({ ...config, numLayers: 3 }, lora, 1));
    expect(() => readPeftAdapter(dir, config)).toThrow(/the adapter has layers beyond this model's 2/);
    // A listed module missing from the weights.
    dir = fresh();
    writePeftAdapter(dir, { ...lora, targets: ['q', 'k', 'v', 'down'] }, w);
    expect(() => readPeftAdapter(dir, config)).toThrow(/is missing 'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight'/);
    // Tensor names that keep PEFT's adapter name (a state_dict saved by hand, not by save_pretrained).
    dir = fresh();
    writePeftAdapter(dir, lora, new Map([...w].map(([k, t]) => [k.replace(/\.lora_([AB])\.weight$/, '.lora_$1.default.weight'), t])));
    expect(() => readPeftAdapter(dir, config)).toThrow(/is missing 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' but holds '[^']*q_proj\.lora_A\.default\.weight': its tensor names keep PEFT's adapter name \('default'\)/);
  });

  it('explains a missing or corrupt weights file', () => {
    const dir = fresh();
    writePeftAdapter(dir, lora, trainedLora(config, lora, 3));
    const f = join(dir, 'adapter_model.safetensors');
    writeFileSync(f, writeSafetensors(new Map()).subarray(0, 4));
    expect(() => readPeftAdapter(dir, config)).toThrow(/adapter_model\.safetensors: not a valid safetensors file/);
    rmSync(f);
    expect(() => readPeftAdapter(dir, config)).toThrow(/adapter_model\.safetensors: file not found/);
    // A pickle instead: named as such, with the conversion to run.
    writeFileSync(join(dir, 'adapter_model.bin'), 'PK');
    expect(() => readPeftAdapter(dir, config)).toThrow(/adapter_model\.bin: the adapter's weights are a PyTorch pickle[\s\S]*save_file\(\{k: v\.contiguous\(\) for k, v in torch\.load\(/);
    rmSync(join(dir, 'adapter_config.json'));
    expect(() => readPeftAdapter(dir)).toThrow(/adapter_config\.json: file not found/);
  });

  it('refuses DoRA, trained biases and base-modifying initialisations saying what the adapter computes, why it cannot be computed here and what to do, never inviting an edit of the flag alone', () => {
    const base = toAdapterConfig(lora);
    const message = (j: Record<string, unknown>): string => {
      try {
        parseAdapterConfig(j, 'adapter_config.json', config);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    const dora = message({ ...base, use_dora: true });
    expect(dora).toMatch(/weight-decomposed LoRA \(DoRA, use_dora true\).*lora_magnitude_vector.*setting use_dora to false would drop the learned magnitudes .*wrong.*merge_and_unload\(\).*full-model checkpoints.*or retrain with use_dora false/);
    const pissa = message({ ...base, init_lora_weights: 'pissa_niter_4' });
    expect(pissa).toMatch(/init_lora_weights "pissa_niter_4".*modified base model.*path_initial_model_for_weight_conversion/);
    expect(parseAdapterConfig({ ...base, init_lora_weights: 'gaussian' }).config).toEqual(lora);
    for (const m of [dora, pissa, message({ ...base, bias: 'lora_only' }), message({ ...base, lora_bias: true }), message({ ...base, target_parameters: ['experts.gate_up_proj'] })]) {
      expect(m).toMatch(/which is not supported: /);
      expect(m).not.toMatch(/must be/);
    }
  });

  it('returns modules_to_save as given (placed on the model by readPeftAdapter), and refuses a value that is not a list of names', () => {
    const base = toAdapterConfig(lora);
    expect(parseAdapterConfig({ ...base, modules_to_save: ['lm_head', 'embed_tokens'] }).modulesToSave).toEqual(['lm_head', 'embed_tokens']);
    expect(parseAdapterConfig({ ...base, modules_to_save: [] }).modulesToSave).toBeNull();
    expect(() => parseAdapterConfig({ ...base, modules_to_save: 'lm_head' })).toThrow(/'modules_to_save' must be a list of module names, got "lm_head"/);
  });

  it('resolves rsLoRA, rank/alpha patterns and module selection only against a model, and refuses what PEFT refuses or what cannot be adapted here', () => {
    const base = toAdapterConfig(lora);
    expect(() => parseAdapterConfig({ ...base, use_rslora: true })).toThrow(/selects modules or ranks per module .*readPeftAdapter\(dir, model\)/);
    const rs = parseAdapterConfig({ ...base, use_rslora: true }, 'adapter_config.json', config).config;
    expect(rs.modules!.map((m) => m.scale)).toEqual(Array(config.numLayers * 3).fill(8 / Math.sqrt(4)));
    const fail = (j: Record<string, unknown>): (() => unknown) => () => parseAdapterConfig({ ...base, ...j }, 'adapter_config.json', config);
    expect(fail({ target_modules: '.*' })).toThrow(/target_modules ".\*" also selects module '', which this implementation cannot adapt/);
    expect(fail({ target_modules: '.*_proj|lm_head' })).toThrow(/also selects module 'lm_head'/);
    expect(fail({ target_modules: '(?P<x>q)_proj' })).toThrow(/uses '\(\?P', Python regular-expression syntax/);
    expect(fail({ target_modules: 'q_proj\\Z' })).toThrow(/uses '\\Z'/);
    expect(fail({ target_modules: '.{,3}q_proj' })).toThrow(/uses '{,'/);
    expect(fail({ target_modules: '[]q]_proj' })).toThrow(/uses '\[\]'/);
    expect(fail({ target_modules: 'q_proj' })).toThrow(/select no module of this model/); // a string is a full match: no module is named just q_proj
    expect(fail({ target_modules: '.*q_proj', layers_to_transform: [0] })).toThrow(/regular-expression target_modules/);
    expect(fail({ layers_pattern: 'layers' })).toThrow(/layers_pattern is set without layers_to_transform/);
    expect(fail({ layers_to_transform: [7] })).toThrow(/select no module/);
    expect(fail({ rank_pattern: { q_proj: 1.5 } })).toThrow(/rank_pattern 'q_proj' must be a positive integer, got 1.5/);
    expect(fail({ exclude_modules: ['q_proj', 'v_proj', 'down_proj'] })).toThrow(/select no module/);
    // layers_to_transform as a single index, and a pattern matched at the end of the name after a dot.
    const one = parseAdapterConfig({ ...base, layers_to_transform: 1, rank_pattern: { 'self_attn.q_proj': 2 } }, 'adapter_config.json', config).config;
    expect(one.modules).toEqual([
      { layer: 1, target: 'q', rank: 2, scale: 4 }, { layer: 1, target: 'v', rank: 4, scale: 2 }, { layer: 1, target: 'down', rank: 4, scale: 2 },
    ]);
  });

  it('reads, ignores as function-neutral, or refuses by name every field of PEFT\'s LoraConfig (peft main, 2026-08: tuners/lora/config.py and config.py)', () => {
    const base = toAdapterConfig(lora);
    // A value other than the default for each field.
    const fields: Record<string, unknown> = {
      r: 2, target_modules: ['q_proj'], exclude_modules: ['v_proj'], lora_alpha: 3, lora_dropout: 0.1, fan_in_fan_out: true, bias: 'all',
      use_rslora: true, modules_to_save: ['lm_head'], init_lora_weights: 'olora', layers_to_transform: [0], layers_pattern: 'layers',
      rank_pattern: { q_proj: 2 }, alpha_pattern: { q_proj: 2 }, megatron_config: { tp: 2 }, megatron_core: 'other', trainable_token_indices: [1],
      loftq_config: { loftq_bits: 4 }, eva_config: { rho: 2 }, corda_config: { corda_method: 'kpm' }, lora_ga_config: { direction: 'ArB2r' },
      use_dora: true, velora_config: { num_groups: 2 }, alora_invocation_tokens: [5], use_qalora: true, qalora_group_size: 8,
      monteclora_config: { n: 2 }, layer_replication: [[0, 1]], runtime_config: { ephemeral_gpu_offload: true }, lora_bias: true,
      target_parameters: ['w'], use_bdlora: { nblocks: 2 }, arrow_config: { top_k: 2 }, kasa_config: { x: 1 }, ensure_weight_tying: true,
      task_type: 'SEQ_CLS', peft_type: 'IA3', auto_mapping: { base_model_class: 'X' }, peft_version: '0.18.0', base_model_name_or_path: 'x', revision: 'main', inference_mode: false,
    };
    for (const [field, value] of Object.entries(fields)) {
      try {
        parseAdapterConfig({ ...base, [field]: value }, 'adapter_config.json', config);
      } catch (e) {
        const m = (e as Error).message;
        expect(m, field).not.toMatch(/unsupported field/);
        expect(m, field).toContain(field);
      }
    }
  });

  it('names the module whose tensor has another rank than its rank_pattern says', () => {
    const dir = fresh();
    const l: LoraConfig = parseAdapterConfig({ ...toAdapterConfig(lora), rank_pattern: { v_proj: 2 } }, 'adapter_config.json', config).config;
    writePeftAdapter(dir, lora, trainedLora(config, lora, 3));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(toAdapterConfig(l)));
    expect(() => readPeftAdapter(dir, config)).toThrow(/v_proj\.lora_A\.weight' has shape \[4, 16\].*its rank is 4, the adapter config says rank 2 for this module \(rank_pattern\)/);
  });
});
