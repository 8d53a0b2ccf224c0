/**
 * The instruction format of the hallucination-tracing benchmark (METHOD.md), after CEA and the
 * DDA paper: a system turn, a user turn carrying the document, and the summary as the assistant turn.
 */

/** The system turn of every fine-tuning and test sample. */
export const SYSTEM_PROMPT = 'You will act as a summarization expert.';

/**
 * The user turn for a document, exactly as in METHOD.md:
 * `"Document: {document}\n\nYour task is to read the Document and produce a succinct and accurate
 * summary that captures the key points and main arguments presented in the text.\n\nSummary:"`.
 * The assistant turn is the summary itself.
 */
export function userPrompt(document: string): string {
  return (
    `Document: ${document}\n\n` +
    'Your task is to read the Document and produce a succinct and accurate summary that captures ' +
    'the key points and main arguments presented in the text.\n\nSummary:'
  );
}
