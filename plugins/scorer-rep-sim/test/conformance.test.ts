// The plugin-author conformance suite (@dda/conformance) on this plugin's scorer.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-rep-sim';

scorerConformance('rep-sim');
