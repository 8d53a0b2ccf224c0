/**
 * @dda/data: reading the data people fine-tune with and the outputs they want explained (JSON
 * Lines, JSON, CSV, Parquet, `datasets` save_to_disk folders, LLaMA-Factory dataset_info.json
 * entries; prompt/response pairs, chat messages, ShareGPT conversations, Alpaca,
 * document/summary), field mapping, and labels of true sources; every error names the file and the
 * record.
 *
 * The public entry point, listed name by name (issue 25): what the attribution, the CLI, the data
 * sets, the tests and the docs use. The file readers underneath (tables, Parquet and save_to_disk
 * folders, LLaMA-Factory's dataset_info.json) are reached through the record readers and are not
 * exported.
 */
// the instruction format of the hallucination-tracing benchmark: its system turn and user turn
export { SYSTEM_PROMPT, userPrompt } from './instruction-format.js';
// CSV text to records
export { parseCsv } from './read-table.js';
// training data and queries, read and normalised, and the field mapping of their columns
export {
  dataFilesOf, parseFieldMap, readQueryData, readQueryRecords, readTrainingData, readTrainingRecords, scanTrainingData,
  type DataRendering, type DataScan, type FieldMap, type PromptFormat, type QueryRecord, type TrainingRecord,
} from './records.js';
// labels of true sources
export { readLabels, type LabelSet } from './labels.js';
