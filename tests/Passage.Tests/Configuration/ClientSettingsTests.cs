using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Client;
using Passage.Configuration;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Configuration;

public sealed class ClientSettingsTests
{
    private static readonly string Relay = $"{NodeIdentity.Create().NodeId}@127.0.0.1:25443";

    private static SettingsLayer JsonLayer(string socksUsers) =>
        new("client.json", new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(
            $$"""{ "client": { "relays": ["{{Relay}}"], "socks": ["127.0.0.1:26080"], "http": ["off"], "socksUsers": {{socksUsers}} } }"""))).Build());

    private static SettingsLayer Flags(params (string Key, string Value)[] values) =>
        new("flags", new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    private static (LocalProxyOptions Proxy, IReadOnlyList<string> Errors) Read(params SettingsLayer[] layers)
    {
        var reader = new SettingsReader(layers);
        var (_, proxy, _) = ClientSettings.Read(reader);
        return (proxy, reader.Errors);
    }

    [Fact]
    public void Socks_users_are_an_object_of_user_and_password()
    {
        var (proxy, errors) = Read(JsonLayer("""{ "alice": "secret", "bob": "p:w" }"""));
        Assert.Empty(errors);
        Assert.Equal(new Dictionary<string, string> { ["alice"] = "secret", ["bob"] = "p:w" }, proxy.SocksUsers);
    }

    [Fact]
    public void Socks_users_at_the_rfc_1929_limit_of_255_bytes_are_accepted()
    {
        // 85 three-byte characters: 255 bytes of UTF-8, as the SOCKS5 handshake carries them.
        var name = new string('€', 85);
        var (proxy, errors) = Read(JsonLayer($$"""{ "{{name}}": "{{new string('p', 255)}}" }"""));
        Assert.Empty(errors);
        Assert.Equal(new string('p', 255), proxy.SocksUsers[name]);
    }

    [Fact]
    public void The_socks_user_flag_gives_the_same_map()
    {
        var (proxy, errors) = Read(Flags(("client:relays:0", Relay), ("client:socksUsers:alice", "secret")));
        Assert.Empty(errors);
        Assert.Equal("secret", Assert.Single(proxy.SocksUsers).Value);
    }

    [Theory]
    [InlineData("""["alice:secret"]""")]
    [InlineData("""[":"]""")]
    [InlineData("""["u:"]""")]
    [InlineData("""[":p"]""")]
    [InlineData("""{ "0": "alice", "1": "secret" }""")]
    public void Socks_users_written_as_a_list_are_an_error_that_shows_the_object_form(string socksUsers)
    {
        var (proxy, errors) = Read(JsonLayer(socksUsers));
        var error = Assert.Single(errors);
        Assert.StartsWith("client.socksUsers: expected an object of user: password pairs, e.g. { \"alice\": \"secret\" }, not a list", error);
        Assert.EndsWith("(from client.json)", error);
        Assert.Empty(proxy.SocksUsers);
    }

    [Fact]
    public void Socks_users_as_one_string_are_an_error()
    {
        var (_, errors) = Read(JsonLayer("\"alice:secret\""));
        Assert.StartsWith("client.socksUsers: expected an object of user: password pairs", Assert.Single(errors));
    }

    [Theory]
    [InlineData("""{ "": "secret" }""", "client.socksUsers: a user name is empty")]
    [InlineData("""{ "alice": "" }""", "client.socksUsers.alice: the password is empty")]
    [InlineData("""{ "alice": { "x": "y" } }""", "client.socksUsers.alice: expected a text value")]
    public void Empty_user_names_and_passwords_are_errors_naming_the_key(string socksUsers, string expected)
    {
        var (proxy, errors) = Read(JsonLayer(socksUsers));
        Assert.StartsWith(expected, Assert.Single(errors));
        Assert.Empty(proxy.SocksUsers);
    }

    [Fact]
    public void User_names_and_passwords_longer_than_255_bytes_are_errors_naming_the_key()
    {
        var longName = new string('a', 300);
        var (_, nameErrors) = Read(JsonLayer($$"""{ "{{longName}}": "secret" }"""));
        Assert.StartsWith("client.socksUsers: user 'aaaaaaaaaaaaaaaa...' is 300 bytes long: RFC 1929 allows 1 to 255", Assert.Single(nameErrors));

        // 128 two-byte characters: 128 characters, but 256 bytes on the wire.
        var (_, passwordErrors) = Read(JsonLayer($$"""{ "alice": "{{new string('é', 128)}}" }"""));
        var error = Assert.Single(passwordErrors);
        Assert.StartsWith("client.socksUsers.alice: the password is 256 bytes long: RFC 1929 allows 1 to 255", error);
        Assert.DoesNotContain("é", error);
    }

    /// <summary>U+FFFD is what the runtime reads where an argument or a variable held bytes that are no UTF-8.</summary>
    [Theory]
    [InlineData("alice", "caf\uFFFD", "client.socksUsers.alice: the password holds U+FFFD")]
    [InlineData("al\uFFFDce", "secret", "client.socksUsers.al\uFFFDce: the user name holds U+FFFD")]
    public void A_user_or_password_holding_the_replacement_character_is_an_error(string user, string password, string expected)
    {
        var (proxy, errors) = Read(Flags(("client:relays:0", Relay), ($"client:socksUsers:{user}", password)));
        var error = Assert.Single(errors);
        Assert.StartsWith(expected, error);
        Assert.DoesNotContain("caf", error);
        Assert.Empty(proxy.SocksUsers);
    }

    /// <summary>A settings file is decoded strictly: a replacement character there was written so, and is a password like any.</summary>
    [Fact]
    public void A_password_holding_the_replacement_character_in_a_file_is_taken()
    {
        var (proxy, errors) = Read(JsonLayer("""{ "alice": "caf\uFFFD" }"""));
        Assert.Empty(errors);
        Assert.Equal("caf\uFFFD", proxy.SocksUsers["alice"]);
    }

    [Fact]
    public void An_empty_password_from_the_flag_is_an_error_naming_the_key_and_the_flags()
    {
        var (_, errors) = Read(Flags(("client:relays:0", Relay), ("client:socksUsers:alice", "")));
        Assert.Equal("client.socksUsers.alice: the password is empty: RFC 1929 needs 1 to 255 bytes (from flags)", Assert.Single(errors));
    }

    /// <summary>
    /// A proxy that asks no credentials, listening beyond loopback, serves whoever reaches it through the user's relays
    /// and token: a configuration error unless <c>client.insecureOpen</c> says it is meant.
    /// </summary>
    [Theory]
    [InlineData("client:http:0", "0.0.0.0:8118", false, "client.http")]
    [InlineData("client:http:0", "[::]:8118", false, "client.http")]
    [InlineData("client:socks:0", "192.0.2.1:1080", false, "client.socks")]
    [InlineData("client:socks:0", "0.0.0.0:1080", true, null)]
    public void A_proxy_without_credentials_beyond_loopback_needs_insecure_open(string key, string endpoint, bool socksUser, string? error)
    {
        (string, string)[] values = [("client:relays:0", Relay), (key, endpoint), .. socksUser ? [("client:socksUsers:alice", "secret")] : Array.Empty<(string, string)>()];
        var (_, errors) = Read(Flags(values));
        if (error is null)
        {
            Assert.Empty(errors);
        }
        else
        {
            // Where the address came from, as every other setting's error says it.
            Assert.Contains(errors, e => e.StartsWith($"{error}: {endpoint} is not a loopback address", StringComparison.Ordinal)
                && e.Contains("--insecure-open", StringComparison.Ordinal) && e.EndsWith("(from flags)", StringComparison.Ordinal));
            var (_, allowed) = Read(Flags([.. values, ("client:insecureOpen", "true")]));
            Assert.Empty(allowed);
        }
    }

    [Fact]
    public void Loopback_proxies_need_no_credentials()
    {
        var (_, errors) = Read(Flags(("client:relays:0", Relay), ("client:http:0", "[::1]:8118"), ("client:socks:0", "127.0.0.2:1080")));
        Assert.Empty(errors);
    }

    /// <summary>
    /// <c>[::ffff:127.0.0.1]</c> is loopback (its IPv4 address decides), but an IPv6 socket that is not dual-mode cannot
    /// bind it: it is read as the IPv4 address it maps, and the front door listens there.
    /// </summary>
    [Theory]
    [InlineData("client:socks:0")]
    [InlineData("client:http:0")]
    public async Task An_ipv4_mapped_listen_address_is_read_as_its_ipv4_address_and_listened_on(string key)
    {
        var (proxy, errors) = Read(Flags(("client:relays:0", Relay), (key, "[::ffff:127.0.0.1]:0")));
        Assert.Empty(errors);
        var endpoint = Assert.Single(key.StartsWith("client:socks", StringComparison.Ordinal) ? proxy.SocksEndpoints : proxy.HttpEndpoints);

        await using var listener = new FrontDoorListener("test", [endpoint], new RelayLimits(), (_, _, _, _) => Task.FromResult(false), NullLogger.Instance, new RelayMetrics(), TimeProvider.System);
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, listener.LocalEndpoints[0].Port)).WaitAsync(Timeouts.Default);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 0), endpoint);
    }

    [Fact]
    public void Http_users_let_the_http_proxy_listen_beyond_loopback()
    {
        var (proxy, errors) = Read(Flags(("client:relays:0", Relay), ("client:http:0", "0.0.0.0:8118"), ("client:httpUsers:alice", "se:cret")));
        Assert.Empty(errors);
        Assert.Equal("se:cret", proxy.HttpUsers["alice"]);
    }

    /// <summary>
    /// <c>client.token</c> must be a token a relay can take (token68): one with a line break went raw into the HTTP/1.1
    /// CONNECT head (a field of its choosing there), one with a space or a non-ASCII letter could never be accepted. The
    /// error names the key, never the token.
    /// </summary>
    [Theory]
    [InlineData("abc\r\nX-Injected: 1")]
    [InlineData("two words")]
    [InlineData("café")]
    [InlineData("==")]
    public void A_token_a_relay_cannot_take_is_an_error_that_does_not_show_it(string token)
    {
        var reader = new SettingsReader([Flags(("client:relays:0", Relay), ("client:token", token))]);
        var (client, _, _) = ClientSettings.Read(reader);
        var error = Assert.Single(reader.Errors);
        Assert.Contains("client", error, StringComparison.Ordinal);
        Assert.Contains("token", error, StringComparison.Ordinal);
        Assert.DoesNotContain(token, error, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new PassageClient(client));
    }

    [Theory]
    [InlineData("s3cret-Token_1.2~x+y/z==")]
    [InlineData("a")]
    public void A_token68_is_taken_as_it_is(string token)
    {
        var reader = new SettingsReader([Flags(("client:relays:0", Relay), ("client:token", token))]);
        var (client, _, _) = ClientSettings.Read(reader);
        Assert.Empty(reader.Errors);
        Assert.Equal(token, client.Token);
    }

    /// <summary>
    /// <c>client.key</c>: an identity file the client presents to relays; one missing is made at start. A file that is no
    /// identity, a directory, or an empty name (an unset variable: the client would present no key) is an error naming
    /// the key.
    /// </summary>
    [Fact]
    public void The_client_key_is_an_identity_file_or_a_path_to_make_one_at()
    {
        using var directory = new TemporaryDirectory();
        var existing = Path.Combine(directory.Path, "client.pem");
        using (var identity = NodeIdentity.Create())
        {
            identity.Save(existing, overwrite: false);
        }
        foreach (var good in new[] { existing, Path.Combine(directory.Path, "new.pem") })
        {
            var reader = new SettingsReader([Flags(("client:relays:0", Relay), ("client:key", good))]);
            var (_, _, keyFile) = ClientSettings.Read(reader);
            Assert.Empty(reader.Errors);
            Assert.Equal(good, keyFile);
        }
        var none = new SettingsReader([Flags(("client:relays:0", Relay))]);
        Assert.Null(ClientSettings.Read(none).KeyFile);
        Assert.Empty(none.Errors);

        var notAnIdentity = Path.Combine(directory.Path, "notes.txt");
        File.WriteAllText(notAnIdentity, "hello");
        foreach (var (bad, says) in new[] { (notAnIdentity, "is not a PEM file"), (directory.Path, "directory"), ("", "the file name is empty") })
        {
            var reader = new SettingsReader([Flags(("client:relays:0", Relay), ("client:key", bad))]);
            var (_, _, keyFile) = ClientSettings.Read(reader);
            var error = Assert.Single(reader.Errors);
            Assert.StartsWith("client.key", error, StringComparison.Ordinal);
            Assert.Contains(says, error, StringComparison.Ordinal);
        }
    }
}
