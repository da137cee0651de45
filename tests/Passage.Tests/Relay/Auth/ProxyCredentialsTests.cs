using System.Text;
using Passage.Relay.Auth;

namespace Passage.Tests.Relay.Auth;

public sealed class ProxyCredentialsTests
{
    private static string? Read(string header)
    {
        var buffer = new char[ProxyCredentials.MaxTokenLength];
        return ProxyCredentials.TryReadToken(header, buffer, out int length) ? new string(buffer, 0, length) : null;
    }

    private static string Basic(string userPass) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(userPass));

    [Theory]
    [InlineData("Bearer abc123", "abc123")]
    [InlineData("bearer abc123", "abc123")]
    [InlineData("BEARER abc123", "abc123")]
    [InlineData("Bearer a-b.c_d~e+f/g==", "a-b.c_d~e+f/g==")]
    [InlineData("Bearer    abc123", "abc123")]
    [InlineData("  Bearer abc123  ", "abc123")]
    [InlineData("\tBearer abc123\t", "abc123")]
    public void Bearer_token(string header, string expected) => Assert.Equal(expected, Read(header));

    [Theory]
    [InlineData("any:TOKEN", "TOKEN")]
    [InlineData(":TOKEN", "TOKEN")]
    [InlineData("user:pass:with:colons", "pass:with:colons")]
    [InlineData("user:pässwörd", "pässwörd")]
    public void Basic_password_is_the_token_and_the_user_is_ignored(string userPass, string expected) =>
        Assert.Equal(expected, Read(Basic(userPass)));

    [Fact]
    public void Basic_scheme_is_case_insensitive() =>
        Assert.Equal("tok", Read("bAsIc " + Convert.ToBase64String("u:tok"u8.ToArray())));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Bearer =")]
    [InlineData("Bearer abc def")]
    [InlineData("Bearer abc,def")]
    [InlineData("Bearer ab=c")]
    [InlineData("Bearer realm=\"x\"")]
    [InlineData("Bearer\tabc")]
    [InlineData("Digest username=\"a\"")]
    [InlineData("Negotiate abc123")]
    [InlineData("Bearerabc123")]
    [InlineData("abc123")]
    [InlineData("Basic !!!!")]
    [InlineData("Basic abc")]
    [InlineData("Basic dXNlcg=")]
    [InlineData("Basic")]
    public void Malformed_or_other_schemes_give_no_token(string header) => Assert.Null(Read(header));

    [Theory]
    [InlineData("user")]
    [InlineData("user:")]
    [InlineData("")]
    public void Basic_without_a_password_gives_no_token(string userPass) => Assert.Null(Read(Basic(userPass)));

    [Fact]
    public void Basic_with_invalid_utf8_gives_no_token() =>
        Assert.Null(Read("Basic " + Convert.ToBase64String([(byte)'u', (byte)':', 0xff, 0xfe])));

    [Fact]
    public void Tokens_longer_than_the_limit_are_malformed()
    {
        string longest = new('a', ProxyCredentials.MaxTokenLength);
        Assert.Equal(longest, Read("Bearer " + longest));
        Assert.Null(Read("Bearer " + longest + "a"));
        Assert.Equal(longest, Read(Basic("u:" + longest)));
        Assert.Null(Read(Basic("u:" + longest + "a")));
        Assert.Null(Read("Basic " + new string('A', 100_000)));
    }

    [Theory]
    [InlineData("alice:secret", "alice", "secret")]
    [InlineData("alice:se:cret", "alice", "se:cret")]
    [InlineData(":secret", "", "secret")]
    [InlineData("älice:pässwörd", "älice", "pässwörd")]
    public void Basic_user_and_password_both_come_out(string userPass, string user, string password)
    {
        var decoded = new byte[ProxyCredentials.MaxBasicDecodedLength];
        Assert.True(ProxyCredentials.TryReadBasic(Basic(userPass), decoded, out var readUser, out var readPassword));
        Assert.Equal((user, password), (Encoding.UTF8.GetString(decoded[readUser]), Encoding.UTF8.GetString(decoded[readPassword])));
    }

    [Theory]
    [InlineData("Bearer abc123")]                 // another scheme
    [InlineData("Basic")]                         // no credentials
    [InlineData("Basic !!!!")]                    // not base64
    [InlineData("Basic YWxpY2U=")]                // "alice": no colon
    [InlineData("Basic YWxpY2U6/w==")]            // "alice:" then 0xFF: not UTF-8
    [InlineData("Basic /zpi")]                    // 0xFF then ":b": a user-id that is not UTF-8
    public void Basic_user_and_password_are_not_read_from_anything_else(string header) =>
        Assert.False(ProxyCredentials.TryReadBasic(header, new byte[ProxyCredentials.MaxBasicDecodedLength], out _, out _));
}
