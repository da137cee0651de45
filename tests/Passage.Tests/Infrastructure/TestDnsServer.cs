using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A small authoritative-looking DNS server on 127.0.0.1, UDP and TCP on one port the system picks, answering
/// from records the test sets, and misbehaving on request (silence, truncation, failures, a forged reply first).
/// Its encoder is written here independently of the relay's, so a test checks one against the other.
/// </summary>
public sealed class TestDnsServer : IAsyncDisposable
{
    public const ushort A = 1, Cname = 5, Soa = 6, Aaaa = 28;

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private readonly ConcurrentDictionary<(string Name, ushort Type), Rr[]> _records = new();

    /// <summary>
    /// A server on <paramref name="endPoint"/> (an IPv4 one), or on a loopback port from the OS. A given end point is
    /// bound once: a <see cref="SocketException"/> when it is taken or not allowed (port 53 needs root).
    /// </summary>
    public TestDnsServer(IPEndPoint? endPoint = null)
    {
        // One port for both transports, as a real server has; retry when the port is taken for TCP.
        for (var attempt = 0; ; attempt++)
        {
            _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                _udp.Bind(endPoint ?? new IPEndPoint(IPAddress.Loopback, 0));
            }
            catch (SocketException)
            {
                _udp.Dispose();
                throw;
            }
            _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                _tcp.Bind(_udp.LocalEndPoint!);
                _tcp.Listen(16);
                break;
            }
            catch (SocketException)
            {
                _udp.Dispose();
                _tcp.Dispose();
                if (attempt >= 20 || endPoint is not null)
                {
                    throw;
                }
            }
        }

        _udpLoop = Task.Run(ServeUdpAsync);
        _tcpLoop = Task.Run(ServeTcpAsync);
    }

    /// <summary>A resource record: an address, or a CNAME's target.</summary>
    public sealed record Rr(uint Ttl, IPAddress? Address = null, string? Target = null);

    public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;

    /// <summary>Every question received: transport ("udp" or "tcp"), name and type.</summary>
    public ConcurrentQueue<(string Transport, string Name, ushort Type)> Questions { get; } = new();

    /// <summary>Names never answered (a silent server for them).</summary>
    public ConcurrentDictionary<string, bool> Silent { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Questions of this type are never answered (a middlebox that drops AAAA, say); null for none.</summary>
    public ushort? DropType { get; set; }

    /// <summary>Answer every name with this response code and no records (2 server failure, 5 refused); 0 for normal answers.</summary>
    public int FailWith { get; set; }

    /// <summary>Every UDP answer comes truncated (TC, no records), so the whole answer is only over TCP.</summary>
    public bool TruncateUdp { get; set; }

    /// <summary>Before each UDP answer, send one with the wrong ID and another address (a late or forged reply).</summary>
    public IPAddress? ForgeFirst { get; set; }

    /// <summary>A missing name is answered NXDOMAIN with an SOA of this TTL and MINIMUM; null for none.</summary>
    public (uint Ttl, uint Minimum)? NegativeSoa { get; set; } = (600, 60);

    /// <summary>
    /// When set, answers every UDP question instead of the records: given the query as received, the datagrams to send
    /// back, in order (none: silence). For the replies no sound server sends: malformed, forged, mismatched.
    /// </summary>
    public Func<byte[], IEnumerable<byte[]>>? RawUdp { get; set; }

    /// <summary>When set, serves each TCP connection instead of the records, given the query read from it.</summary>
    public Func<byte[], Socket, Task>? RawTcp { get; set; }

    /// <summary>Where the last UDP question came from.</summary>
    public IPEndPoint? LastClient { get; private set; }

    /// <summary>A name in wire form, uncompressed.</summary>
    public static byte[] WireName(string name) =>
        [.. name.Split('.', StringSplitOptions.RemoveEmptyEntries).SelectMany(l => (byte[])[(byte)l.Length, .. Encoding.ASCII.GetBytes(l)]), 0];

    /// <summary>A resource record in wire form: the owner as given (a name or a pointer), then type, class, TTL and data.</summary>
    public static byte[] RawRecord(byte[] owner, ushort type, uint ttl, byte[] data, ushort @class = 1) =>
        [.. owner, (byte)(type >> 8), (byte)type, (byte)(@class >> 8), (byte)@class,
            (byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl, (byte)(data.Length >> 8), (byte)data.Length, .. data];

    /// <summary>Where the question of <paramref name="query"/> ends (an OPT record may follow).</summary>
    public static int QuestionEnd(byte[] query)
    {
        var at = 12;
        while (query[at] != 0)
        {
            at += 1 + query[at];
        }
        return at + 5;
    }

    /// <summary>The record type asked in <paramref name="query"/>.</summary>
    public static ushort QuestionType(byte[] query) => BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(QuestionEnd(query) - 4));

    /// <summary>
    /// A reply to <paramref name="query"/>: its ID and question, these answer and authority records, the flags of a
    /// recursive server's answer with <paramref name="rcode"/> (and TC when <paramref name="truncated"/>).
    /// </summary>
    public static byte[] RawReply(byte[] query, int rcode, byte[][] answers, byte[][]? authorities = null, bool truncated = false)
    {
        var questionEnd = QuestionEnd(query);
        authorities ??= [];
        byte[] header =
        [
            query[0], query[1], (byte)(0x81 | (truncated ? 0x02 : 0)), (byte)(0x80 | rcode), 0, 1,
            (byte)(answers.Length >> 8), (byte)answers.Length, (byte)(authorities.Length >> 8), (byte)authorities.Length, 0, 0,
        ];
        return [.. header, .. query[12..questionEnd], .. answers.SelectMany(a => a), .. authorities.SelectMany(a => a)];
    }

    public void Set(string name, ushort type, params Rr[] records) => _records[(name.ToLowerInvariant(), type)] = records;

    public void SetAddress(string name, uint ttl, params string[] addresses)
    {
        Set(name, A, [.. addresses.Select(IPAddress.Parse).Where(a => a.AddressFamily == AddressFamily.InterNetwork).Select(a => new Rr(ttl, a))]);
        Set(name, Aaaa, [.. addresses.Select(IPAddress.Parse).Where(a => a.AddressFamily == AddressFamily.InterNetworkV6).Select(a => new Rr(ttl, a))]);
    }

    public int Count(string name, string? transport = null) =>
        Questions.Count(q => q.Name.Equals(name, StringComparison.OrdinalIgnoreCase) && (transport is null || q.Transport == transport));

    private async Task ServeUdpAsync()
    {
        var buffer = new byte[1500];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            LastClient = (IPEndPoint)received.RemoteEndPoint;
            if (RawUdp is { } raw)
            {
                var query = buffer[..received.ReceivedBytes];
                Record(query, "udp");
                foreach (var datagram in raw(query))
                {
                    await _udp.SendToAsync(datagram, SocketFlags.None, received.RemoteEndPoint);
                }
                continue;
            }

            var answer = Answer(buffer.AsSpan(0, received.ReceivedBytes), "udp", out var forged);
            if (answer is null)
            {
                continue;
            }

            if (forged is not null)
            {
                await _udp.SendToAsync(forged, SocketFlags.None, received.RemoteEndPoint);
            }

            await _udp.SendToAsync(answer, SocketFlags.None, received.RemoteEndPoint);
        }
    }

    private async Task ServeTcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using var connection = client;
                try
                {
                    var prefix = new byte[2];
                    await ReceiveExactlyAsync(client, prefix);
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
                    await ReceiveExactlyAsync(client, query);
                    if (RawTcp is { } raw)
                    {
                        Record(query, "tcp");
                        await raw(query, client);
                    }
                    else if (Answer(query, "tcp", out _) is { } answer)
                    {
                        var framed = new byte[2 + answer.Length];
                        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                        answer.CopyTo(framed, 2);
                        await client.SendAsync(framed, SocketFlags.None);
                    }
                }
                catch (Exception exception) when (exception is SocketException or EndOfStreamException or ObjectDisposedException or OperationCanceledException)
                {
                }
            });
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }
            buffer = buffer[n..];
        }
    }

    /// <summary>Notes the question of <paramref name="query"/> in <see cref="Questions"/>.</summary>
    private void Record(byte[] query, string transport)
    {
        var at = 12;
        var labels = new List<string>();
        while (at < query.Length && query[at] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query, at + 1, query[at]));
            at += 1 + query[at];
        }
        Questions.Enqueue((transport, string.Join('.', labels), BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(at + 1))));
    }

    /// <summary>The answer to <paramref name="query"/>, or null to stay silent.</summary>
    private byte[]? Answer(ReadOnlySpan<byte> query, string transport, out byte[]? forged)
    {
        forged = null;
        if (query.Length < 17)
        {
            return null;
        }

        var id = BinaryPrimitives.ReadUInt16BigEndian(query);
        var at = 12;
        var labels = new List<string>();
        while (query[at] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query.Slice(at + 1, query[at])));
            at += 1 + query[at];
        }
        var questionEnd = at + 5;
        var name = string.Join('.', labels);
        var type = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]);
        Questions.Enqueue((transport, name, type));
        if (Silent.ContainsKey(name) || type == DropType)
        {
            return null;
        }

        var question = query[12..questionEnd].ToArray();
        if (FailWith != 0)
        {
            return Message(id, FailWith, question, [], soa: false);
        }

        // Follow CNAMEs as a recursive server would, putting the chain in the answer.
        var answers = new List<(string Owner, ushort Type, Rr Rr)>();
        // The response code and the SOA speak of the chain's end (RFC 6604): no such name when it does not exist.
        var owner = name.ToLowerInvariant();
        for (var hop = 0; hop < 8 && _records.TryGetValue((owner, Cname), out var alias) && alias.Length > 0; hop++)
        {
            answers.Add((owner, Cname, alias[0]));
            owner = alias[0].Target!.ToLowerInvariant();
        }
        var found = _records.TryGetValue((owner, type), out var records) && records.Length > 0;
        if (found)
        {
            answers.AddRange(records!.Select(r => (owner, type, r)));
        }
        var exists = found || _records.Keys.Any(k => k.Name == owner);

        if (transport == "udp" && TruncateUdp)
        {
            return Message(id, 0, question, [], soa: false, truncated: true);
        }

        if (transport == "udp" && ForgeFirst is { } fake)
        {
            forged = Message((ushort)(id ^ 0x5a5a), 0, question, [(name.ToLowerInvariant(), type, new Rr(3600, fake))], soa: false);
        }

        return Message(id, exists ? 0 : 3, question, answers, soa: !found);
    }

    private byte[] Message(ushort id, int rcode, byte[] question, List<(string Owner, ushort Type, Rr Rr)> answers, bool soa, bool truncated = false)
    {
        var message = new List<byte>();
        void U16(int v) { message.Add((byte)(v >> 8)); message.Add((byte)v); }
        void U32(uint v) { U16((int)(v >> 16)); U16((int)(v & 0xFFFF)); }
        void Name(string n)
        {
            foreach (var label in n.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                message.Add((byte)label.Length);
                message.AddRange(Encoding.ASCII.GetBytes(label));
            }
            message.Add(0);
        }

        var withSoa = soa && NegativeSoa is not null;
        U16(id);
        U16(0x8180 | (truncated ? 0x0200 : 0) | rcode);
        U16(1);
        U16(answers.Count);
        U16(withSoa ? 1 : 0);
        U16(0);
        message.AddRange(question);
        foreach (var (owner, type, rr) in answers)
        {
            // The first answer's owner is the question's name: written as a pointer to it, as servers do.
            if (message.Count == 12 + question.Length && answers[0].Owner == owner)
            {
                U16(0xC00C);
            }
            else
            {
                Name(owner);
            }
            U16(type);
            U16(1);
            U32(rr.Ttl);
            if (rr.Target is { } target)
            {
                var rdata = new List<byte>();
                foreach (var label in target.Split('.', StringSplitOptions.RemoveEmptyEntries))
                {
                    rdata.Add((byte)label.Length);
                    rdata.AddRange(Encoding.ASCII.GetBytes(label));
                }
                rdata.Add(0);
                U16(rdata.Count);
                message.AddRange(rdata);
            }
            else
            {
                var bytes = rr.Address!.GetAddressBytes();
                U16(bytes.Length);
                message.AddRange(bytes);
            }
        }
        if (withSoa)
        {
            Name("test");
            U16(Soa);
            U16(1);
            U32(NegativeSoa!.Value.Ttl);
            var start = message.Count;
            U16(0);
            Name("ns.test");
            Name("hostmaster.test");
            U32(1);
            U32(3600);
            U32(600);
            U32(86400);
            U32(NegativeSoa.Value.Minimum);
            var length = message.Count - start - 2;
            message[start] = (byte)(length >> 8);
            message[start + 1] = (byte)length;
        }
        return [.. message];
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        await Task.WhenAll(_udpLoop, _tcpLoop).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        _stop.Dispose();
    }
}
