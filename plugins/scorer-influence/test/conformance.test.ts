// The plugin-author conformance suite (@dda/conformance) on this plugin's scorers.
import { scorerConformance } from '@dda/conformance/vitest';
import '@dda/scorer-influence';

scorerConformance('if-exact');
scorerConformance('if-lissa');
// Its streamed form (one fit pass per LiSSA step) is used only above 1 GiB of training gradients by default.
scorerConformance('if-lissa', { options: { streamAboveBytes: 0 } });
scorerConformance('datainf');
scorerConformance('if-ekfac');
// The conformance task has 10 training samples and 3 test outputs: k must stay below each.
scorerConformance('grad-dot-pc', { options: { k: 2 } });
scorerConformance('grad-dot-pc', {
  options: { k: 1, basis: 'query' },
  optOut: {
    'sign-convention':
      "with the query basis the removed direction is made of the test outputs' own gradients (the leading one of only 3 here), so a verbatim copy loses that part of its score while other samples keep theirs: the method does not promise that the copy ranks first (the training basis passes the check)",
  },
});
scorerConformance('trackstar');
