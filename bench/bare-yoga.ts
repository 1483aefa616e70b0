/** The baseline of `npm run bench`: a bare graphql-yoga "hello" on node:http, on $PORT. */
import http from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({
  schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }),
  logging: false,
  graphiql: false,
});
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return void res.end('ok');
  void yoga(req, res);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
