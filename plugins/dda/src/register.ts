import { debiasers, denoisers, numberOption, type Debiaser, type Denoiser, type PluginOptions, type RegistryEntry } from '@dda/core';
import { fittedBetaDebiaser, rankDebiaser, rawDebiaser, unitNormDebiaser, zscoreDebiaser } from './debias.js';
import { emaDenoiser, lrWeightedDenoiser, meanDenoiser, medianDenoiser, zscoreMeanDenoiser } from './denoise.js';

/**
 * Registry entries of the debiasers. Options: `beta` (number, default 1) for `raw`, `zscore`,
 * `unit-norm` and `rank`; `fitted-beta` takes none. `raw` has the highest priority (the paper).
 */
export const debiaserEntries: readonly RegistryEntry<Debiaser, PluginOptions>[] = [
  { id: 'raw', description: "fine-tuned − β × base scores, the paper's debias (option beta, default 1)", priority: 100, options: ['beta'], create: (o) => rawDebiaser(numberOption(o, 'beta', 1)) },
  { id: 'zscore', description: 'z-score each test column of both matrices, then fine-tuned − β × base (option beta, default 1)', priority: 90, options: ['beta'], create: (o) => zscoreDebiaser(numberOption(o, 'beta', 1)) },
  { id: 'unit-norm', description: 'scale each test column to unit L2 norm, then fine-tuned − β × base (option beta, default 1)', priority: 80, options: ['beta'], create: (o) => unitNormDebiaser(numberOption(o, 'beta', 1)) },
  { id: 'rank', description: 'replace each test column by [0,1] mid-ranks, then fine-tuned − β × base (option beta, default 1)', priority: 70, options: ['beta'], create: (o) => rankDebiaser(numberOption(o, 'beta', 1)) },
  { id: 'fitted-beta', description: 'residual of the per-column least-squares fit of fine-tuned on base (β = cov/var)', priority: 60, options: [], create: () => fittedBetaDebiaser() },
];

/** Registry entries of the denoisers (`ema` takes option `alpha`). `mean` has the highest priority (the paper). */
export const denoiserEntries: readonly RegistryEntry<Denoiser, PluginOptions>[] = [
  { id: 'mean', description: meanDenoiser.description, priority: 100, create: () => meanDenoiser },
  { id: 'lr-weighted', description: lrWeightedDenoiser.description, priority: 90, create: () => lrWeightedDenoiser },
  { id: 'median', description: medianDenoiser.description, priority: 80, create: () => medianDenoiser },
  { id: 'zscore-mean', description: zscoreMeanDenoiser.description, priority: 70, create: () => zscoreMeanDenoiser },
  { id: 'ema', description: 'exponential smoothing over the epoch checkpoints, s_i = α·IS_θi + (1 − α)·s_{i−1} (option alpha, default 0.5)', priority: 60, create: (o) => emaDenoiser(numberOption(o, 'alpha', 0.5)) },
];

/**
 * Adds the DDA debiasers and denoisers to the `debiasers` / `denoisers` registries of @dda/core.
 * Idempotent: ids already registered (by an earlier call, or replaced by the user) are left alone.
 * Called when this package is imported.
 */
export function registerDdaPlugins(): void {
  for (const e of debiaserEntries) if (!debiasers.has(e.id)) debiasers.register(e);
  for (const e of denoiserEntries) if (!denoisers.has(e.id)) denoisers.register(e);
}
