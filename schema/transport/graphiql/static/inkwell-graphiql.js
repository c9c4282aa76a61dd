/*
 * Inkwell's GraphiQL (served by schema/transport/graphiql): renders GraphiQL 3 with the explorer plugin
 * and a fetcher that sends the Headers tab's headers everywhere:
 *   - queries and mutations: HTTP POST to this page's URL, with the headers;
 *   - subscriptions: graphql-transport-ws on the same URL, with the headers as the
 *     connection_init payload (Inkwell reads its "Authorization"). Browsers cannot set
 *     headers on a WebSocket, and one socket carries one set of credentials, so the socket
 *     is replaced when the headers change.
 * Globals from the vendored UMD builds: React, ReactDOM, GraphiQL, GraphiQLPluginExplorer,
 * graphqlWs. Settings come from the page's JSON block #inkwell-graphiql-config.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("inkwell-graphiql-config").textContent);
  var url = window.location.origin + window.location.pathname;
  var wsUrl = url.replace(/^http/, "ws");
  var httpFetcher = GraphiQL.createFetcher({ url: url });
  var socket = null; // {key, client}: the graphql-ws client for one set of headers

  // Parsed from the text sent: GraphiQL's own documentAST lags the editor by a debounce, so
  // a quick Ctrl-Enter could pick the wrong transport.
  function isSubscription(params) {
    try {
      var doc = GraphiQL.GraphQL.parse(params.query);
    } catch (error) {
      return false; // the server will say what is wrong with it
    }
    var operation = GraphiQL.GraphQL.getOperationAST(doc, params.operationName || undefined);
    return operation !== null && operation.operation === "subscription";
  }

  // The graphql-ws client for these headers: the current one, or a new one replacing it.
  function socketFor(headers) {
    var key = JSON.stringify(headers);
    if (socket === null || socket.key !== key) {
      if (socket !== null) socket.client.dispose(); // its subscriptions end with it
      var client = graphqlWs.createClient({
        url: wsUrl,
        connectionParams: headers,
        // A refused sign-in (4403) or a bad request is shown at once, not retried.
        retryAttempts: 0,
      });
      socket = { key: key, client: client };
    }
    return socket.client;
  }

  // A subscription as the observable GraphiQL expects: it shows each result, an error (a
  // closed socket as a sentence), and stops it with the stop button.
  function subscription(client, params) {
    return {
      subscribe: function (observer) {
        var stop = client.subscribe(params, {
          next: function (result) { observer.next(result); },
          complete: function () { observer.complete(); },
          error: function (error) {
            if (error instanceof CloseEvent) {
              error = { message: ("The socket closed: " + error.code + " " + error.reason).trim() };
            }
            observer.error(error);
          },
        });
        return { unsubscribe: stop };
      },
    };
  }

  function fetcher(params, opts) {
    if (!isSubscription(params)) return httpFetcher(params, opts);
    return subscription(socketFor((opts && opts.headers) || {}), params);
  }

  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function InkwellGraphiQL() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      plugins: [explorer],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(InkwellGraphiQL)
  );
})();
