import { Kind, Lexer, parse, Source, TokenKind, visit, type DocumentNode } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { requestViewer } from './authentication.js';

/** Lexical tokens in one document (punctuation, names, values); a 1,000-event inline `ingestUsage` needs about 15,000. */
export const MAX_DOCUMENT_TOKENS = 30_000;
/** Nesting of `{`, `[` and `(` in one document: selections, list and object values alike. */
export const MAX_DOCUMENT_NESTING = 64;
/** Field selections written in one document (aliases included), checked before validation. */
export const MAX_DOCUMENT_FIELDS = 2_000;

export interface DocumentScan {
  tokens: number;
  /** The deepest nesting of brackets seen. */
  nesting: number;
}

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * Counts tokens and bracket nesting with graphql-js's own lexer, which is iterative (the parser
 * is recursive: 10,000 nested selections overflow its stack). Stops as soon as a limit is passed;
 * a syntax error ends the scan, and parsing then reports it.
 */
export function scanDocument(query: string, limits = { tokens: MAX_DOCUMENT_TOKENS, nesting: MAX_DOCUMENT_NESTING }): DocumentScan {
  const lexer = new Lexer(new Source(query));
  const scan: DocumentScan = { tokens: 0, nesting: 0 };
  let depth = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      scan.tokens++;
      if (OPENING.has(token.kind)) scan.nesting = Math.max(scan.nesting, ++depth);
      else if (CLOSING.has(token.kind)) depth--;
      if (scan.tokens > limits.tokens || scan.nesting > limits.nesting) break;
    }
  } catch {
    // A syntax error: the parser reports it.
  }
  return scan;
}

/** Field nodes in a parsed document (fragments counted once, as written). */
export function countFields(document: DocumentNode): number {
  let fields = 0;
  visit(document, {
    [Kind.FIELD]() {
      fields++;
    },
  });
  return fields;
}

function tooLarge(code: 'QUERY_TOO_LARGE' | 'QUERY_TOO_DEEP', message: string, extensions: Record<string, unknown>) {
  return createGraphQLError(message, { extensions: { code, ...extensions, http: { status: 400 } } });
}

/**
 * Bounds what a document may cost before the expensive steps: its tokens and nesting before it is
 * parsed (`QUERY_TOO_LARGE`, `QUERY_TOO_DEEP`), its field selections before it is validated
 * (`QUERY_TOO_LARGE`). Cost, depth and breadth after validation are `useQueryCost`'s.
 * Runs after authentication (`useAuthenticationFirst`).
 */
export function useDocumentLimits(): Plugin {
  return {
    onParams({ request, params, setResult }) {
      // A request refused by authentication or its rate limit already has its answer.
      if (!requestViewer(request) || typeof params.query !== 'string') return;
      const scan = scanDocument(params.query);
      if (scan.nesting > MAX_DOCUMENT_NESTING) {
        setResult({
          errors: [
            tooLarge('QUERY_TOO_DEEP', `The document nests brackets more than ${MAX_DOCUMENT_NESTING} levels deep; it was not parsed.`, {
              limit: MAX_DOCUMENT_NESTING,
            }),
          ],
        });
      } else if (scan.tokens > MAX_DOCUMENT_TOKENS) {
        setResult({
          errors: [
            tooLarge('QUERY_TOO_LARGE', `The document has more than ${MAX_DOCUMENT_TOKENS} tokens; it was not parsed. Send large inputs as variables.`, {
              kind: 'tokens',
              limit: MAX_DOCUMENT_TOKENS,
            }),
          ],
        });
      }
    },
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        const document = parse(source, { ...options, maxTokens: MAX_DOCUMENT_TOKENS });
        const fields = countFields(document);
        if (fields > MAX_DOCUMENT_FIELDS) {
          throw tooLarge('QUERY_TOO_LARGE', `The document selects ${fields} fields, over the limit of ${MAX_DOCUMENT_FIELDS}; it was not validated.`, {
            kind: 'fields',
            fields,
            limit: MAX_DOCUMENT_FIELDS,
          });
        }
        return document;
      });
    },
  };
}
