using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Telemetry;

namespace Passage.Relay.Destinations;

/// <summary>
/// The relay's own name lookup: hosts(5), then the DNS servers of <see cref="ResolverConf"/>, asked over UDP
/// (TCP when a reply comes truncated) without holding a thread while waiting, and with the TTLs of the answer,
/// so the <see cref="DnsCache"/> keeps a name no longer than its records allow.
/// </summary>
/// <remarks>
/// For each candidate name (<see cref="ResolverConf.Candidates"/>) the A and AAAA questions go out together on
/// one UDP socket, to one server after the other, round after round (<see cref="ResolverConf.Attempts"/>), each
/// waited for <see cref="ResolverConf.Timeout"/>; a question is done at a server's first reply that answers it
/// (no error, or no such name), and goes to the next server after a failure (SERVFAIL, REFUSED, ...), an
/// unreachable port or the timeout. Once one family has addresses, the other is waited for (over UDP, or over TCP
/// after a truncated reply: asked beside the wait for the other, never instead of it)
/// <see cref="OtherFamilyGrace"/> more at that server and no further; such a one-family answer is kept
/// <see cref="PartialAnswerTtl"/> at most. So is the other once one says the name does not exist: that holds
/// for every type (RFC 8020), but some servers say it to AAAA questions of names with A records (RFC 4074).
/// A negative answer (no such name, or no addresses) is kept for the TTL its SOA gives, and no longer than the
/// CNAMEs that led to it (RFC 2308 §5); one without an SOA of its zone (owned by the chain's end or a parent of
/// it; others are ignored) has no TTL and is not kept, and addresses beside such an answer for the other family are kept
/// <see cref="PartialAnswerTtl"/> at most.
/// Queries over UDP carry an OPT record (EDNS, RFC 6891) offering <see cref="DnsWire.EdnsUdpPayload"/> bytes, so
/// answers up to that size need no TCP retry; a server that refuses it (FORMERR or NOTIMP, without an OPT of its own)
/// is asked again at once without, and so for <see cref="WithoutEdnsFor"/> when the refusal carried the question
/// (one without it, known by its ID alone, is asked again without for that question only). An extended response code (BADVERS, or
/// one unknown here) or a malformed OPT in a reply fails the question at that server. Over TCP, queries go without.
/// Each question has a random ID (the two apart) and goes out from a port the system picks at random; a reply
/// must come from the server asked and match the question and ID, or it is ignored. An error reply without the
/// question, as some servers send, is matched by its ID and source alone, and only fails the question there.
/// The answer is what the first candidate with addresses gave; failing that, "no addresses" when some
/// candidate exists without them, a temporary failure (<see cref="SocketError.TryAgain"/>) when a server could
/// not answer, <see cref="SocketError.TimedOut"/> when no server said anything at all, and otherwise
/// "no such host". Both families present, IPv6 comes first when this host has a route to it (RFC 6724 on
/// most hosts), else IPv4. The caller's cancellation ends a lookup at once. A socket that would take one of the
/// descriptors kept free for the runtime (<see cref="Transport.OpenFileLimit.Headroom"/>) is closed unused, and the
/// lookup fails with <see cref="SocketError.TooManyOpenSockets"/>, as when the process has none left; all but the
/// probe for that route, which then finds none (IPv4 first).
/// <code>
///  name ─▶ hosts(5)? ─yes─▶ its addresses, ordered alike (no TTL: the cache's maximum age)
///            │ no
///            ▼
///   each candidate ─▶ A + AAAA ─▶ server 1 ─▶ server 2 ... (× attempts) ─▶ addresses, TTL = min of the chain
/// </code>
/// </remarks>
internal sealed class StubResolver(ResolverConf conf, HostsFile? hosts, RelayMetrics? metrics = null)
{
    private readonly ReloadingFile<ResolverConf>? _file = conf.SourcePath is { } path
        ? new(path, text => ResolverConf.FromFileText(text, path) is var read && conf.GivenServers is { } given
            ? read with { Servers = given, GivenServers = given }
            : read)
        : null;

    /// <summary>
    /// Room for a UDP reply: more than the <see cref="DnsWire.EdnsUdpPayload"/> the queries advertise, so a reply the
    /// server sends within it (or somewhat beyond) is read whole rather than cut by the kernel.
    /// </summary>
    private const int ReceiveBuffer = 4096;

    /// <summary>
    /// How long a server that refused a query for its OPT record (FORMERR or NOTIMP without an OPT of its own, as
    /// servers from before EDNS answer) is asked without one. Not for the resolver's life: the server may be
    /// upgraded, or the refusal have come from a middlebox now gone; a server not asked without EDNS for this long
    /// costs one query more to find out again.
    /// </summary>
    internal static readonly TimeSpan WithoutEdnsFor = TimeSpan.FromMinutes(15);

    /// <summary>Servers asked without EDNS, and until when (<see cref="Environment.TickCount64"/>).</summary>
    private readonly ConcurrentDictionary<IPEndPoint, long> _withoutEdns = new();

    /// <summary>
    /// How long the other family's reply is still waited for once one family has addresses or no such name. A server that
    /// answers sends both within a round trip; one that drops AAAA questions (some old middleboxes do) would
    /// otherwise hold every lookup for its whole timeout, and the connection for its connect timeout.
    /// </summary>
    internal static readonly TimeSpan OtherFamilyGrace = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Longest an answer is kept when only one family was answered (the other failed or never came), or when the
    /// other's empty answer came without an SOA to say how long its absence may be kept.
    /// </summary>
    internal static readonly TimeSpan PartialAnswerTtl = TimeSpan.FromSeconds(5);

    /// <summary>The settings it asks with now: its file's as it reads now, when it has one.</summary>
    public ResolverConf Conf => _file?.Current ?? conf;

    /// <summary>The addresses of <paramref name="name"/> (a valid DNS name), or why there are none.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<DnsAnswer> LookupAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await ResolveAsync(name, Conf, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException exception) when (exception.SocketErrorCode == SocketError.TooManyOpenSockets)
        {
            // No descriptor for a socket (EMFILE, or the runtime's headroom): this relay's limit, not the name's.
            return new DnsAnswer([], SocketError.TooManyOpenSockets);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // An address family the kernel lacks, ...: this host cannot ask now.
            return new DnsAnswer([], SocketError.TryAgain);
        }
    }

    private async Task<DnsAnswer> ResolveAsync(string name, ResolverConf settings, CancellationToken cancellationToken)
    {
        if (hosts?.Find(name) is { } listed)
        {
            // Ordered as DNS answers are (getaddrinfo sorts both alike): "::1 localhost" before "127.0.0.1 localhost".
            return new DnsAnswer(Order([.. listed]), null);
        }

        bool noData = false;
        bool tryAgain = false;
        bool heard = false;
        TimeSpan? negativeTtl = null;
        foreach (string candidate in settings.Candidates(name))
        {
            Outcome outcome = await AskAsync(candidate, settings, cancellationToken).ConfigureAwait(false);
            if (outcome.Addresses.Count > 0)
            {
                return new DnsAnswer(Order(outcome.Addresses), null, outcome.Ttl);
            }

            noData |= outcome.Kind == OutcomeKind.NoData;
            tryAgain |= outcome.Kind is OutcomeKind.Failed or OutcomeKind.TimedOut;
            heard |= outcome.Kind != OutcomeKind.TimedOut;
            negativeTtl = Min(negativeTtl, outcome.Ttl);
            if (outcome.Kind == OutcomeKind.TimedOut)
            {
                // As glibc's search: servers that said nothing to one name will say nothing to the next.
                break;
            }
        }

        // Nothing but silence from every server: a timeout (504 dns_timeout), not a DNS error.
        return noData ? new DnsAnswer([], null, negativeTtl)
            : tryAgain ? new DnsAnswer([], heard ? SocketError.TryAgain : SocketError.TimedOut)
            : new DnsAnswer([], SocketError.HostNotFound, negativeTtl);
    }

    private enum OutcomeKind
    {
        Addresses,
        NoData,
        NoSuchName,
        Failed,

        /// <summary>Failed, and no server said anything at all: every wait ended in the timeout.</summary>
        TimedOut,
    }

    private readonly record struct Outcome(OutcomeKind Kind, List<IPAddress> Addresses, TimeSpan? Ttl);

    /// <summary>One question of a candidate: its type, its ID at the server now asked, and its reply once final.</summary>
    private sealed class Question(ushort type)
    {
        public ushort Type { get; } = type;

        public ushort Id { get; set; }

        public DnsReply? Reply { get; set; }

        /// <summary>Answered, or failed, at the server now asked.</summary>
        public bool DoneHere { get; set; }

        /// <summary>It went to the server now asked with an OPT record (RFC 6891).</summary>
        public bool Edns { get; set; }

        /// <summary>Its reply came truncated from the server now asked, which is being asked again over TCP.</summary>
        public bool OverTcp { get; set; }

        /// <summary>Some server replied to it or refused it, rather than staying silent.</summary>
        public bool Heard { get; set; }
    }

    private async Task<Outcome> AskAsync(string name, ResolverConf settings, CancellationToken cancellationToken)
    {
        Question[] questions = settings.NoAaaa ? [new(DnsWire.TypeA)] : [new(DnsWire.TypeA), new(DnsWire.TypeAaaa)];
        for (int attempt = 0; attempt < settings.Attempts; attempt++)
        {
            foreach (IPEndPoint server in settings.Servers)
            {
                // Done when every question has its reply, when the name does not exist, and when one family has
                // addresses: the other, failed at a server, is not worth another round of timeouts.
                if (Array.TrueForAll(questions, q => q.Reply is not null)
                    || Array.Exists(questions, q => q.Reply is { Rcode: DnsWire.RcodeNameError } or { Addresses.Count: > 0 }))
                {
                    return Combine(questions);
                }

                await AskServerAsync(server, name, questions, settings.Timeout, cancellationToken).ConfigureAwait(false);
            }
        }

        return Combine(questions);
    }

    private static Outcome Combine(Question[] questions)
    {
        var addresses = new List<IPAddress>();
        TimeSpan? ttl = null;
        bool failed = false;
        bool heard = false;
        bool noSuchName = false;
        bool withoutSoa = false;
        foreach (Question question in questions)
        {
            heard |= question.Heard;
            if (question.Reply is not { } reply)
            {
                failed = true;
                continue;
            }

            noSuchName |= reply.Rcode == DnsWire.RcodeNameError;
            addresses.AddRange(reply.Addresses);
            ttl = Min(ttl, reply.Addresses.Count > 0 ? reply.Ttl : reply.NegativeTtl);
            withoutSoa |= reply.Addresses.Count == 0 && reply.NegativeTtl is null;
        }

        if (addresses.Count > 0 && (failed || withoutSoa))
        {
            // One family only, the other unanswered or its absence given no TTL: asked again soon rather than after the records' TTL.
            ttl = Min(ttl, PartialAnswerTtl);
        }
        else if (addresses.Count == 0 && withoutSoa)
        {
            // A negative answer without an SOA has no TTL to be kept by, and is not kept (RFC 2308 §5).
            ttl = TimeSpan.Zero;
        }

        OutcomeKind kind = addresses.Count > 0 ? OutcomeKind.Addresses
            : noSuchName ? OutcomeKind.NoSuchName
            : failed ? (heard ? OutcomeKind.Failed : OutcomeKind.TimedOut)
            : OutcomeKind.NoData;
        return new Outcome(kind, addresses, ttl);
    }

    /// <summary>Asks <paramref name="server"/> the questions without a final reply yet, waiting at most the timeout.</summary>
    /// <remarks>
    /// A question whose reply comes truncated is asked again over TCP beside the wait for the others over UDP, not
    /// instead of it: a TCP answer that hangs must not keep the other family's reply unread until the timeout, and
    /// once either has addresses the other is waited for <see cref="OtherFamilyGrace"/> more, over UDP or TCP alike.
    /// </remarks>
    private async Task AskServerAsync(IPEndPoint server, string name, Question[] questions, TimeSpan serverTimeout, CancellationToken cancellationToken)
    {
        foreach (Question question in questions)
        {
            question.DoneHere = question.Reply is not null;
            question.OverTcp = false;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(serverTimeout);
        long started = Environment.TickCount64;
        int graceSet = 0;
        var overTcp = new List<Task>();
        string? failure = null;

        // The reply that ends a question here; from the UDP wait, or from a question's TCP retry beside it.
        void Settle(Question question, DnsReply reply)
        {
            if (!reply.Truncated && reply.Rcode is DnsWire.RcodeNoError or DnsWire.RcodeNameError)
            {
                question.Reply = reply;
                metrics?.DnsQueried("answered");
            }
            else
            {
                metrics?.DnsQueried(reply.Truncated ? "unreachable" : "server_failure");
            }

            question.Heard = true;
            question.DoneHere = true;

            // Addresses, or no such name (said for every type, RFC 8020; yet some servers say it to AAAA
            // questions of names with A records, RFC 4074 §4.2): the other reply, if it comes, comes now.
            if (Array.Exists(questions, q => q.Reply is { Addresses.Count: > 0 } or { Rcode: DnsWire.RcodeNameError })
                && Interlocked.Exchange(ref graceSet, 1) == 0)
            {
                TimeSpan left = serverTimeout - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
                timeout.CancelAfter(left < OtherFamilyGrace ? (left > TimeSpan.Zero ? left : TimeSpan.Zero) : OtherFamilyGrace);
            }
        }

        async Task RetryOverTcpAsync(Question question, DnsReply truncated)
        {
            try
            {
                DnsReply? reply = await AskOverTcpAsync(server, name, question, timeout.Token).ConfigureAwait(false);
                Settle(question, reply ?? truncated);
            }
            catch (OperationCanceledException)
            {
                // This server's time (or the caller's) is up: counted below with the other questions left unanswered.
            }
        }

        try
        {
            // Connected: the kernel drops datagrams from anyone but the server, and reports its port closed.
            using var socket = OpenSocket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(server);
            byte[] buffer = new byte[ReceiveBuffer];
            byte[] query = new byte[DnsWire.MaxQuery];
            async Task SendAsync(Question question, bool edns)
            {
                // Apart from the other's: an error reply without the question is known by its ID alone.
                do
                {
                    question.Id = NewId();
                }
                while (Array.Exists(questions, q => q != question && q.Id == question.Id));

                question.Edns = edns;
                int length = DnsWire.WriteQuery(query, question.Id, name, question.Type, edns);
                await socket.SendAsync(query.AsMemory(0, length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            }

            bool edns = true;
            if (_withoutEdns.TryGetValue(server, out long until))
            {
                edns = Environment.TickCount64 >= until;
                if (edns)
                {
                    _withoutEdns.TryRemove(KeyValuePair.Create(server, until));
                }
            }

            foreach (Question question in questions)
            {
                if (!question.DoneHere)
                {
                    await SendAsync(question, edns).ConfigureAwait(false);
                }
            }

            while (!Array.TrueForAll(questions, q => q.DoneHere || q.OverTcp))
            {
                int received = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                foreach (Question question in questions)
                {
                    if (question.DoneHere || question.OverTcp
                        || !DnsWire.TryParseReply(buffer.AsSpan(0, received), question.Id, name, question.Type, out DnsReply reply))
                    {
                        continue;
                    }

                    if (question.Edns && !reply.Edns && reply.Rcode is DnsWire.RcodeFormatError or DnsWire.RcodeNotImplemented)
                    {
                        // A server from before EDNS (RFC 6891 §7): asked again at once without the OPT, and so for a
                        // while when its reply carries the question; one known by its ID alone is as easy to forge as
                        // any failure (RFC 5452), so it costs this question a query and never turns EDNS off for every
                        // lookup. Counted by how the question ends at it, as one question to one server; heard, whatever follows.
                        question.Heard = true;
                        if (!reply.WithoutQuestion)
                        {
                            _withoutEdns[server] = Environment.TickCount64 + (long)WithoutEdnsFor.TotalMilliseconds;
                        }

                        await SendAsync(question, edns: false).ConfigureAwait(false);
                    }
                    else if (reply.Truncated)
                    {
                        metrics?.DnsQueried("truncated");
                        question.OverTcp = true;
                        overTcp.Add(RetryOverTcpAsync(question, reply));
                    }
                    else
                    {
                        Settle(question, reply);
                    }

                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // This server's time is up; the next one is asked.
            failure = "timeout";
        }
        catch (SocketException e) when (e.SocketErrorCode != SocketError.TooManyOpenSockets)
        {
            // Port unreachable, no route, ...: the next server is asked. (Out of descriptors, the lookup ends: no
            // server can be asked.)
            failure = "unreachable";
        }
        finally
        {
            // Each retry over TCP ends by itself: at its answer, or with this server's time.
            await Task.WhenAll(overTcp).ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (failure == "unreachable")
        {
            Array.ForEach(questions, q => q.Heard |= !q.DoneHere);
        }

        CountUnanswered(questions, failure ?? "timeout");
    }

    private void CountUnanswered(Question[] questions, string outcome)
    {
        foreach (Question question in questions)
        {
            if (!question.DoneHere)
            {
                metrics?.DnsQueried(outcome);
            }
        }
    }

    /// <summary>The question asked again over TCP (RFC 7766), after a truncated reply; null when that failed.</summary>
    private static async Task<DnsReply?> AskOverTcpAsync(IPEndPoint server, string name, Question question, CancellationToken token)
    {
        using var socket = OpenSocket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = true;
        try
        {
            await socket.ConnectAsync(server, token).ConfigureAwait(false);
            byte[] query = new byte[2 + DnsWire.MaxQuery];
            question.Id = NewId();
            int length = DnsWire.WriteQuery(query.AsSpan(2), question.Id, name, question.Type);
            BinaryPrimitives.WriteUInt16BigEndian(query, (ushort)length);
            await socket.SendAsync(query.AsMemory(0, 2 + length), SocketFlags.None, token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            byte[] prefix = new byte[2];
            await stream.ReadExactlyAsync(prefix, token).ConfigureAwait(false);
            byte[] message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
            await stream.ReadExactlyAsync(message, token).ConfigureAwait(false);
            return DnsWire.TryParseReply(message, question.Id, name, question.Type, out DnsReply reply) && !reply.Truncated ? reply : null;
        }
        catch (SocketException)
        {
            return null;
        }
        catch (IOException)
        {
            // The stream's end before the whole answer, or a socket error wrapped by NetworkStream.
            return null;
        }
    }

    /// <summary>
    /// A new socket, unless it took one of the descriptors kept free for the runtime (<see cref="Transport.OpenFileLimit.Headroom"/>):
    /// then closed again and, as when the process has none left, a <see cref="SocketException"/> with
    /// <see cref="SocketError.TooManyOpenSockets"/>, which ends the lookup.
    /// </summary>
    private static Socket OpenSocket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        var socket = new Socket(family, type, protocol);
        if (Transport.OpenFileLimit.InHeadroom(socket.Handle))
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TooManyOpenSockets);
        }

        return socket;
    }

    private static ushort NewId() => (ushort)RandomNumberGenerator.GetInt32(0, 65536);

    private static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : a < b ? a : b;

    /// <summary>IPv6 first when this host can route to the first IPv6 address, else IPv4 first; each family in answer order.</summary>
    private static IPAddress[] Order(List<IPAddress> addresses)
    {
        IPAddress? firstV6 = addresses.Find(a => a.AddressFamily == AddressFamily.InterNetworkV6);
        if (firstV6 is null || !addresses.Exists(a => a.AddressFamily == AddressFamily.InterNetwork))
        {
            return [.. addresses];
        }

        bool v6First = HasRoute(firstV6);
        return [.. addresses.OrderBy(a => a.AddressFamily == AddressFamily.InterNetworkV6 ? (v6First ? 0 : 1) : (v6First ? 1 : 0))];
    }

    /// <summary>
    /// Whether the system would send to <paramref name="address"/>: connecting a UDP socket picks a route and sends
    /// nothing. Not known (false) when the socket would take one of the descriptors kept free for the runtime
    /// (<see cref="OpenSocket"/>): the order stays IPv4 first, as where IPv6 has no route.
    /// </summary>
    private static bool HasRoute(IPAddress address)
    {
        try
        {
            using var probe = OpenSocket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Connect(address, 9);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
