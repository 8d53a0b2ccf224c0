// The plugin-author conformance suite (@dda/conformance) on this plugin's scorers.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-influence';

scorerConformance('if-exact');
scorerConformance('if-lissa');
scorerConformance('datainf');
scorerConformance('if-ekfac');
