/** The StateSet document's GraphQL example, exactly as written (the load test and test/graphql.test.ts run it). */
export const DOCUMENT_QUERY = `query GetAgentWithConversations($agentId: ID!) {
  agent(id: $agentId) {
    id
    name
    conversations(last: 10) {
      edges {
        node {
          id
          status
          satisfaction_score
          messages {
            content
            role
            timestamp
          }
        }
      }
    }
  }
}`;
