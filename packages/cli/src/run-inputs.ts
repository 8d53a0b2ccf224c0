/**
 * The options that say which fine-tuning run to read and how its training data is rendered, shared
 * by `dda attribute` (and `dda slurm`) and `dda index build`, with their parsing.
 */
import type { Argv } from 'yargs';
import { DdaError } from '@dda/core';
import type { TaskFiles } from '@dda/attribution';
import { parseFieldMap } from '@dda/data';

/** Adds the run's input options: base, checkpoints, training data and how it is read and rendered. */
export function runInputOptions<T>(y: Argv<T>) {
  return y
    .option('base', { type: 'string', demandOption: true, describe: 'Hugging Face model folder of the base model θ0 (config.json, safetensors, tokenizer.json; tokenizer_config.json or chat_template.jinja where the model has them)' })
    .option('checkpoints', { type: 'string', array: true, demandOption: true, describe: 'the fine-tuning run\'s checkpoints in order: PEFT LoRA adapter folders, full model folders, or a trainer output folder with checkpoint-<step>/ subfolders' })
    .option('train', { type: 'string', demandOption: true, describe: 'training data (.jsonl, .json, .csv, .parquet, a datasets save_to_disk folder, or dataset_info.json#name of LLaMA-Factory): prompt/response, messages, ShareGPT conversations, instruction/input/output (Alpaca) or document/summary records' })
    .option('fields', { type: 'string', array: true, describe: 'map the --train file\'s column names: ours=theirs, e.g. --fields prompt=question response=answer' })
    .option('prompt-format', { type: 'string', choices: ['raw', 'chat'], default: 'raw', describe: 'prompt strings: used as they are (raw; a system or history field is then refused), or as one user turn of the model\'s chat template after the system and history turns (chat)' })
    .option('max-length', { type: 'number', describe: 'longest sequence in tokens (default: the model\'s max_position_embeddings)' })
    .option('overlong', { type: 'string', choices: ['fail', 'truncate'], default: 'fail', describe: 'records longer than --max-length: fail naming the record, or truncate (prompt from the left, then the response\'s end; what is cut is logged, and recorded in dda attribute\'s summary.json)' })
    .option('tokenizer', { type: 'string', describe: "a folder whose tokenizer and chat template render the data instead of --base's: the checkpoint where the trainer saved the one it trained with (refused otherwise when a checkpoint's saved tokenizer renders differently)" })
    .option('loss-on', { type: 'string', choices: ['assistant', 'all'], default: 'assistant', describe: "tokens of a training conversation that carry the loss: assistant (the assistant turns; TRL's assistant_only_loss, LLaMA-Factory) or all (TRL's SFTTrainer default for messages data)" })
    .option('chat-date', { type: 'string', describe: "the day the training data was rendered (YYYY-MM-DD), for a chat template that writes the date (Llama-3.x's strftime_now); default 2024-07-26, never today's" })
    .option('base-name', { type: 'string', describe: "the Hub id of the model in --base, where its folder is named otherwise (the adapters' base_model_name_or_path is checked against it)" });
}

/** The parsed options of {@link runInputOptions}. */
export interface RunInputArgs {
  base: string; checkpoints: (string | number)[]; train: string; fields?: (string | number)[] | undefined; 'prompt-format': string;
  'max-length'?: number | undefined; overlong: string; tokenizer?: string | undefined; 'loss-on': string; 'chat-date'?: string | undefined; 'base-name'?: string | undefined;
}

/**
 * The TaskFiles fields of parsed run inputs, validated.
 *
 * @throws DdaError for a --max-length that is not a positive integer, or a malformed --fields mapping.
 */
export function runInputsFrom(a: RunInputArgs): Pick<TaskFiles, 'base' | 'checkpoints' | 'train' | 'fields' | 'promptFormat' | 'maxLength' | 'overlong' | 'tokenizer' | 'lossOn' | 'chatDate' | 'baseName'> {
  const maxLength = a['max-length'];
  if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength <= 0)) throw new DdaError(`--max-length must be a positive integer, got ${maxLength}`);
  return {
    base: a.base, checkpoints: a.checkpoints.map(String), train: a.train,
    ...(a.fields ? { fields: parseFieldMap(a.fields.map(String), '--fields') } : {}),
    promptFormat: a['prompt-format'] as 'raw' | 'chat',
    ...(maxLength !== undefined ? { maxLength } : {}),
    overlong: a.overlong as 'fail' | 'truncate',
    ...(a.tokenizer !== undefined ? { tokenizer: a.tokenizer } : {}),
    lossOn: a['loss-on'] as 'assistant' | 'all',
    ...(a['chat-date'] !== undefined ? { chatDate: a['chat-date'] } : {}),
    ...(a['base-name'] !== undefined ? { baseName: a['base-name'] } : {}),
  };
}
