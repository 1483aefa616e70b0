import { lexicographicSortSchema } from 'graphql';
import { builder } from '../builder.js';
import './enums.js';
import './realm.js';
import './workspace.js';
import './datastream.js';
import './project.js';
import './feature.js';
import './api-key.js';
import './viewer.js';
import './contract.js';
import './usage.js';
import './traffic.js';
import './ingest.js';
import './api-key-mutations.js';
import './billing.js';
import './exports.js';

export const schema = lexicographicSortSchema(builder.toSchema());
