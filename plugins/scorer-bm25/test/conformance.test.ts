// The plugin-author conformance suite (@dda/conformance) on this plugin's scorer.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-bm25';

scorerConformance('bm25');
