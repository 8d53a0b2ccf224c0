// The plugin-author conformance suite (@dda/conformance) on this plugin's scorer; the suite's model is
// a tiny unigram language model, so cea's optimizer steps are real.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-cea';

scorerConformance('cea');
