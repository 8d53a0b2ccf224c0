// The plugin-author conformance suite (@dda/conformance) on this plugin's scorers.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-grad-dot';

scorerConformance('grad-dot');
scorerConformance('grad-cos');
scorerConformance('tracin-cp');
