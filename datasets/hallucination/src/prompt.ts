/** The instruction format of the benchmark lives in @dda/data (it is also a record format users give). */
export { SYSTEM_PROMPT, userPrompt } from '@dda/data';
