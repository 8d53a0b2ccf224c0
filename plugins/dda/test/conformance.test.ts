// The plugin-author conformance suite (@dda/conformance) on this plugin's debiasers and denoisers.
import { debiaserConformance, denoiserConformance } from '@dda/conformance/vitest';
import '@dda/plugin-dda';

debiaserConformance('raw');
debiaserConformance('zscore');
debiaserConformance('unit-norm');
debiaserConformance('rank');
debiaserConformance('fitted-beta', {
  optOut: { 'beta-zero': 'it takes no β: it fits β per test column by least squares (β = cov/var), so β = 0 is not one of its settings' },
});
for (const id of ['mean', 'lr-weighted', 'median', 'zscore-mean', 'ema']) denoiserConformance(id);
