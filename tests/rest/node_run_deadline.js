// The Node client's runJob against a gateway that takes the call and never answers, for
// tests/rest/test_node_client.py: prints the error's code and message.
'use strict';

const { SyllabusClient } = require('../../clients/node/client');

async function main() {
  const client = new SyllabusClient(process.argv[2], { timeoutSeconds: 0.5 });
  try {
    await client.runJob({ spec: { summarizeText: { text: 'never answered' } } });
    console.log('answered');
  } catch (error) {
    console.log(`${error.code} ${error.message}`);
  } finally {
    client.close();
  }
}

main();
