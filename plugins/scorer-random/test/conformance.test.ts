// The plugin-author conformance suite (@dda/conformance) on this plugin's scorer. The chance baseline
// opts out of the checks that ask scores to mean something, with the reasons.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-random';

const POSITIONAL = 'the scores are uniform draws in row-major position order (the chance baseline): no score belongs to a sample, so none moves with it';
scorerConformance('random', {
  optOut: {
    'training-order': POSITIONAL,
    'test-order': POSITIONAL,
    'sign-convention': 'random scores have no sign by construction: the chance baseline ranks a verbatim copy first only by chance',
  },
});
