import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages by name; resolve them to their TypeScript sources.
export default defineConfig({
  resolve: {
    alias: {
      '@dda/core': src('./packages/core/src/index.ts'),
      '@dda/conformance/vitest': src('./packages/conformance/src/vitest.ts'),
      '@dda/conformance': src('./packages/conformance/src/index.ts'),
      '@dda/nx-plugin': src('./packages/nx-plugin/src/index.ts'),
      '@dda/data': src('./packages/data/src/index.ts'),
      '@dda/model': src('./packages/model/src/index.ts'),
      '@dda/report': src('./packages/report/src/index.ts'),
      '@dda/attribution': src('./packages/attribution/src/index.ts'),
      '@dda/experiment': src('./packages/experiment/src/index.ts'),
      '@dda/harness': src('./packages/harness/src/index.ts'),
      '@dda/cli': src('./packages/cli/src/index.ts'),
      '@dda/scorer-rep-sim': src('./plugins/scorer-rep-sim/src/index.ts'),
      '@dda/scorer-cea': src('./plugins/scorer-cea/src/index.ts'),
      '@dda/scorer-grad-dot': src('./plugins/scorer-grad-dot/src/index.ts'),
      '@dda/scorer-influence': src('./plugins/scorer-influence/src/index.ts'),
      '@dda/scorer-trak': src('./plugins/scorer-trak/src/index.ts'),
      '@dda/scorer-bm25': src('./plugins/scorer-bm25/src/index.ts'),
      '@dda/scorer-random': src('./plugins/scorer-random/src/index.ts'),
      '@dda/measurements': src('./plugins/measurements/src/index.ts'),
      '@dda/plugin-dda': src('./plugins/dda/src/index.ts'),
      '@dda/backend-onnxruntime': src('./plugins/backend-onnxruntime/src/index.ts'),
      '@dda/backend-tfjs': src('./plugins/backend-tfjs/src/index.ts'),
      '@dda/backend-tfjs-node': src('./plugins/backend-tfjs-node/src/index.ts'),
      '@dda/dataset-hallucination': src('./datasets/hallucination/src/index.ts'),
      '@dda/dataset-registry': src('./datasets/registry/src/index.ts'),
      '@dda/dataset-realtext': src('./datasets/realtext/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'plugins/*/test/**/*.test.ts', 'datasets/*/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
