import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { Prisma } from './generated/prisma/client.js';
import { badUserInput, echoJson } from './errors.js';
import { isTimeZone } from './usage/time.js';

const DECIMAL_PATTERN = /^-?\d+(\.\d+)?$/;

function parseDecimal(value: unknown): Prisma.Decimal {
  if (typeof value === 'string' && DECIMAL_PATTERN.test(value.trim())) return new Prisma.Decimal(value.trim());
  if (typeof value === 'number' && Number.isSafeInteger(value)) return new Prisma.Decimal(value);
  throw badUserInput(
    `Decimal values are strings of digits with an optional fraction, e.g. "12.5" (got ${echoJson(value)}).`,
    'INVALID_DECIMAL',
  );
}

/** A literal's error points at the literal (`locations`), as graphql-js's own validation errors do. */
function atLiteral<T>(ast: ValueNode, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof GraphQLError && !error.nodes) throw new GraphQLError(error.message, { nodes: ast, extensions: error.extensions });
    throw error;
  }
}

/** Exact decimal numbers, sent as strings so no client parses them into floats. */
export const DecimalScalar = new GraphQLScalarType<Prisma.Decimal, string>({
  name: 'Decimal',
  description: 'An exact decimal number as a string, e.g. "1234.500000001". Never a float.',
  serialize(value) {
    if (value instanceof Prisma.Decimal) return value.toFixed();
    if (typeof value === 'bigint') return value.toString();
    return parseDecimal(value).toFixed();
  },
  parseValue: parseDecimal,
  parseLiteral(ast) {
    return atLiteral(ast, () => {
      if (ast.kind === Kind.STRING || ast.kind === Kind.INT) return parseDecimal(ast.kind === Kind.INT ? Number(ast.value) : ast.value);
      throw badUserInput('Decimal values are strings, e.g. "12.5".', 'INVALID_DECIMAL');
    });
  },
});

function parseTimeZone(value: unknown): string {
  if (typeof value === 'string' && isTimeZone(value)) return value;
  throw badUserInput(`${echoJson(value)} is not a known IANA time zone (e.g. "Europe/Berlin", "UTC").`, 'INVALID_TIME_ZONE');
}

/** IANA zone names; an unknown zone is a BAD_USER_INPUT with reason INVALID_TIME_ZONE. */
export const TimeZoneScalar = new GraphQLScalarType<string, string>({
  name: 'TimeZone',
  description: 'An IANA time zone name, e.g. "Europe/Berlin" or "UTC".',
  serialize: (value) => String(value),
  parseValue: parseTimeZone,
  parseLiteral(ast) {
    return atLiteral(ast, () => parseTimeZone(ast.kind === Kind.STRING ? ast.value : undefined));
  },
});
