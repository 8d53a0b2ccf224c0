/**
 * @dda/data: reading the data people fine-tune with and the outputs they want explained (JSON
 * Lines, JSON, CSV, Parquet, `datasets` save_to_disk folders, LLaMA-Factory dataset_info.json
 * entries; prompt/response pairs, chat messages, ShareGPT conversations, Alpaca,
 * document/summary), field mapping, and labels of true sources; every error names the file and the
 * record.
 */
export * from './instruction-format.js';
export * from './read-table.js';
export * from './columnar.js';
export * from './llamafactory.js';
export * from './records.js';
export * from './labels.js';
