// The built-in plugins register their scorers, debiasers and denoisers on import.
import '@dda/scorer-grad-dot';
import '@dda/scorer-bm25';
import '@dda/scorer-random';
import '@dda/scorer-influence';
import '@dda/scorer-trak';
import '@dda/scorer-rep-sim';
import '@dda/scorer-cea';
import '@dda/plugin-dda';
import '@dda/measurements';
