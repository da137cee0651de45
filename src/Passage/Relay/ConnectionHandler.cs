using System.Net.Sockets;

namespace Passage.Relay;

/// <summary>
/// Serves one accepted connection for a <see cref="FrontDoorListener"/>, and owns
/// <paramref name="socket"/> from the call on. The task completes once the handler is done with the
/// connection's setup: false when the connection has ended with it (refused, closed, or served to its
/// end), true when the connection goes on being relayed, and then it reports its end to
/// <paramref name="end"/>, once (possibly before this task completes). A handler that throws has not
/// handed the connection on.
/// </summary>
/// <param name="socket">The accepted socket.</param>
/// <param name="id">The connection's id, for logs.</param>
/// <param name="end">Where a relayed connection reports its end.</param>
/// <param name="closeAll">Cancelled at the drain deadline: the handler and what it starts must close the connection then.</param>
internal delegate Task<bool> ConnectionHandler(Socket socket, long id, IConnectionEnd end, CancellationToken closeAll);
