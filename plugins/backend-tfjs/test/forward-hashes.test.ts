/**
 * The tfjs forward pass and its gradients, bit for bit (issue 25): sha256 of the logits, hidden
 * states and loss gradients (over the LoRA adapters with frozen base weights, and over every base
 * tensor) of fixed models of every family feature, on both tfjs backends, recorded from the code
 * as it was before the decoder block was written once in @dda/model (decoder-block.ts); configs
 * and weights from packages/model/test/decoder-block-cases.ts. Long benchmark runs resume on
 * artifacts computed by this forward pass, so any change of a value (even the order of a float
 * sum) fails here; change a hash only for a deliberate numeric change (DDA_PRINT_FORWARD_HASHES=1
 * prints the new ones).
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { decoderWeightSpecs, loraModuleList, loraWeightSpecs, targetModule, type DecoderConfig, type LoraConfig } from '@dda/model';
import { forward, sequenceLosses, startTfjsBackend, type DecoderParams, type VariableMap } from '@dda/backend-tfjs';
import { PINNED_CONFIGS as CONFIGS, PINNED_LORA as LORA, PINNED_MODULES as MODULES, pinnedValues } from '../../../packages/model/test/decoder-block-cases.js';

const CASES: [config: string, lora: LoraConfig][] = [...Object.keys(CONFIGS).map((c): [string, LoraConfig] => [c, LORA]), ['llama-gqa', MODULES]];

/** Deterministic variables. */
function variables(specs: readonly { name: string; shape: readonly number[] }[], trainable: boolean): VariableMap {
  return new Map(specs.map(({ name, shape }, s) => [name, tf.variable(tf.tensor(pinnedValues(name, shape, s, 0.3), [...shape]), trainable, `${name}:${Math.random()}`)]));
}

/** Two right-padded sequences of 7 tokens and their loss masks. */
const TOKENS = [[1, 5, 3, 17, 9, 2, 0], [1, 12, 7, 7, 4, 18, 11]];
const MASK = [[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]];

const hashOf = (arrays: readonly Float32Array[]): string => {
  const h = createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
};

/** Hashes of the logits and hidden states, the LoRA gradients (frozen base) and the base gradients of one case. */
function hashes(c: DecoderConfig, l: LoraConfig): { outputs: string; loraGradients: string; baseGradients: string } {
  const base = variables(decoderWeightSpecs(c), true);
  const vars = variables(loraWeightSpecs(c, l), true);
  const lora = { config: l, vars, scales: new Map(loraModuleList(c.numLayers, l).map((m) => [targetModule(m.layer, m.target), m.scale])) };
  const tokens = tf.tensor2d(TOKENS, [2, 7], 'int32');
  const mask = tf.tensor2d(MASK, [2, 6]);
  const frozen: DecoderParams = { config: c, base, lora, frozenBase: true };
  const out = tf.tidy(() => {
    const { logits, hidden } = forward(frozen, tokens);
    return [logits.dataSync() as Float32Array, hidden.dataSync() as Float32Array];
  });
  const grads = (p: DecoderParams, over: VariableMap): Float32Array[] => tf.tidy(() => {
    const { grads: g } = tf.variableGrads(() => tf.sum(sequenceLosses(p, tokens, mask)) as tf.Scalar, [...over.values()]);
    return [...over.values()].map((v) => g[v.name]!.dataSync() as Float32Array);
  });
  const result = { outputs: hashOf(out), loraGradients: hashOf(grads(frozen, vars)), baseGradients: hashOf(grads({ ...frozen, frozenBase: false }, base)) };
  for (const v of [...base.values(), ...vars.values()]) v.dispose();
  tokens.dispose();
  mask.dispose();
  return result;
}

/** sha256 of each case's outputs and gradients per backend, recorded before the decoder block was shared (commit 4540a4d's forward). */
const EXPECTED: Record<string, Record<string, { outputs: string; loraGradients: string; baseGradients: string }>> = {
  'tfjs-cpu': {
    'llama': {
      outputs: 'a0639d50206f1995061a4f4c0f0356a211c562edabbf93fe91e7890644029b97',
      loraGradients: 'a8905c08cdf4f9788960c1594712ae75f119b6fbc02eeb3f0e9203c6daceeabf',
      baseGradients: '871bf24874e5575187ae2650d735657f8553ff06accfd97f9c52774d294b3672',
    },
    'llama-gqa': {
      outputs: '7e2cff9e632a593bceca6f9a7b335718ffe4ca7ec07480e82a69811322b3be34',
      loraGradients: '2d118d297e9ad2447aa0077ce3fbc8092263fe03931a98d694240788a36da2b6',
      baseGradients: '7d4bab2993563566b92d0d627ea8dde24078297fbe662ffe0cb187bdfb7e0f8b',
    },
    'qwen2': {
      outputs: 'f6a4c44665252c558ff907ca1d91fb55c60e1604c0d135302b57a106ce44bd87',
      loraGradients: '97072be513b1b6e8b4111dfe1bb095020c35c972cdc8215cbb777c37d3cb7ad2',
      baseGradients: '4e220d74119ff7ab1e0983ebb52ca6408e1323e27a6a76ad2088f1c8041274db',
    },
    'mistral': {
      outputs: '080753a5c78778105eb23fa7f5b822ee4c2ce17ad595946f689e8dc951ad2036',
      loraGradients: '4a67d2b4d0eb64c6dee42763234b9eb251766761f823b7aa50fe13c87fc5ee0b',
      baseGradients: 'acc77c80a1ad2cb048195ec6d895ccab2c11a338375521a436cb070cfdbee774',
    },
    'llama3': {
      outputs: '1c2d7e37b330e9d8969057a774803e3e6ba3af9dadae39c23e3f911ac08cbe59',
      loraGradients: '7645e2a60956968c927c5f9f3b859942529182231fe1176137494e4c4e5b5f46',
      baseGradients: '2721e5c0a88ddbe489c42aec18eb2e2322e01f2d2c6d4279dae185a0f0b434c0',
    },
    'qwen3': {
      outputs: 'acc7d133abba1d5a16af5eaa82caf3d238df2061c96fc4bc32a7f462c4b16f9c',
      loraGradients: '32c81ea3154ec0091c35b9f9fcb1a9aeacddd6fb65741892a218371672d53cc7',
      baseGradients: '79d25dd4b1e119f7c12be6458a55e15fecc0259dee1faa35e6f618424a0d20de',
    },
    'gemma3': {
      outputs: '508f433c90ead03076afeb8798f86a157c9bb7df157020cbbb13ac5f7483fc99',
      loraGradients: '14c919415ca69cb3dc94824df79f3dda582e9a061ff7fc8f58c88082c67f8709',
      baseGradients: '2ac48c23e100943a9c76326e92109b9dfc344a182bd0d93bd1c4e66a003afde1',
    },
    'llama-gqa (PEFT modules)': {
      outputs: 'df4aabd8fee9148e842cd9d19a4c3ae473640f4730fceca74f9a43968a2b780b',
      loraGradients: 'e0e0e8d75245ee4405af5f04ea859cd096ae069ff66ad91b748f0c8f33e7bca3',
      baseGradients: '560e24b3d5d328a8a074c90d10c2bcc1c46a38e8860479c99eed4696a8cece56',
    },
  },
  'tfjs-wasm': {
    'llama': {
      outputs: '53cb2deaa015b0adeb44b68bf8c5744ff593166b52eb0937db831ee6b598a1de',
      loraGradients: 'c0e95b5b40ed6f3f636a6d46a5cdf91e60e3076cdc0facf043614d85c17cec22',
      baseGradients: '3320f9878135a1d5ae79dd77806a58ef3ae017bb5a27814bb508844b5b00e41e',
    },
    'llama-gqa': {
      outputs: '7ef750ba6721ea74300db387016c06593e2591e2c689223b75dc618ca2f9d3f1',
      loraGradients: '2c8a0cfd33474f1ba68d58e1f38eb40120a8d20cd6c0ce5f7092803b96d07ec8',
      baseGradients: '5c8683e97125efacf210c0d8a7171c40d73753ed6ec4e50f3216b358ef7d034f',
    },
    'qwen2': {
      outputs: 'b2dd33baba8fdfe0725e7b30ad52c1f85aa615c2d10de07db4728ea9f09c7a2f',
      loraGradients: '8916e09db3e2e8047ecc3340f89fd947324a0b756faee870074b294d675499db',
      baseGradients: '02199e95fbb22266788a183f77b9492d737c8c30deb050b9061c4d2276240c60',
    },
    'mistral': {
      outputs: '11e2034a26486fcd40eb351e989da3f29612ae9cada9581b631c3f2d953563b3',
      loraGradients: 'b75228bf8ddcd931535d9af330333b7ec504e4cd906912e1b49aa3d900ac1910',
      baseGradients: '1c6fbc649ed0552ca8f9c8d50279fc1b04f850fcf4dc4bfecc3f4940d23947a5',
    },
    'llama3': {
      outputs: 'd1a7e8420b63e8e276cbe80f875f2e68b497d7054877201993734f41b1b0f8bd',
      loraGradients: '2413c3af2738d7efba2a3185c513767fed1f9863593995b17a34ab251eadef4e',
      baseGradients: '0369f7becb0d053bcd79ab1fedc3b017282f7e742d635096b520e3bc18b70f35',
    },
    'qwen3': {
      outputs: '00e2132d27c9d9c8189a205f96378749c428021efd1809bdaee66766ccc97678',
      loraGradients: '0e05d3eb283651e91c28f862893e5be17acf623ce3f84fa354c5aa43529eb702',
      baseGradients: '24968c7e020da31f970213d8e8251ea0ef4a27f713bd4c07cbc75510a9cb2618',
    },
    'gemma3': {
      outputs: '3761676f50073e65dd1e5833c20398fc12244385b7dda8aabdd2243d2c975939',
      loraGradients: '41dc220ea876180eb19ae43172deb9566bf6fb3022588f2ca3b5425a0c8897b6',
      baseGradients: 'c67e190040e5ec95e2c7b8489311a661bd27c1298ff6beac5b421d7381134f7b',
    },
    'llama-gqa (PEFT modules)': {
      outputs: '6f7650fbe599f5825684870e8bbef0092723bd900bc734b285892d8314f4537c',
      loraGradients: '733c102324410a933772de7781aa3873fd694117a4320dd236d97379508a1a27',
      baseGradients: '32c9d2302f72e28760c7d4aec6427942a059ce6ca3286b3de23d027756b7cf6f',
    },
  },
};

for (const backend of ['tfjs-cpu', 'tfjs-wasm']) {
  describe(`${backend}: the forward pass and its gradients are bit-identical to the recorded ones`, () => {
    it.each(CASES.map(([c, l]) => [`${c}${l === MODULES ? ' (PEFT modules)' : ''}`, c, l] as const))('%s', async (name, c, l) => {
      await startTfjsBackend([backend]);
      const got = hashes(CONFIGS[c]!, l);
      if (process.env.DDA_PRINT_FORWARD_HASHES) console.log(`${backend} ${JSON.stringify(name)}: ${JSON.stringify(got)},`);
      expect(got).toEqual(EXPECTED[backend]?.[name]);
    });
  });
}
