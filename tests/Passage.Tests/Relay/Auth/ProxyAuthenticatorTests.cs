using System.Text;
using Passage.Relay.Auth;

namespace Passage.Tests.Relay.Auth;

public sealed class ProxyAuthenticatorTests : IDisposable
{
    private readonly TokenFileFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    private static string Basic(string userPass) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(userPass));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Bearer wrong")]
    [InlineData("garbage")]
    public void Without_a_token_file_everything_is_allowed(string? header)
    {
        Assert.False(ProxyAuthenticator.None.IsRequired);
        Assert.Equal(AuthResult.Allowed, ProxyAuthenticator.None.Check(header));
    }

    [Fact]
    public void With_a_token_file_decides_missing_invalid_and_allowed()
    {
        _fixture.Write("s3cret-token\nx\n");
        using TokenFile tokens = _fixture.Open();
        var authenticator = new ProxyAuthenticator(tokens);

        Assert.True(authenticator.IsRequired);
        Assert.Equal(AuthResult.Missing, authenticator.Check(null));
        Assert.Equal(AuthResult.Missing, authenticator.Check(""));
        Assert.Equal(AuthResult.Missing, authenticator.Check("  "));
        Assert.Equal(AuthResult.Allowed, authenticator.Check("Bearer s3cret-token"));
        Assert.Equal(AuthResult.Allowed, authenticator.Check("bearer x"));
        Assert.Equal(AuthResult.Allowed, authenticator.Check(Basic("any:s3cret-token")));
        Assert.Equal(AuthResult.Allowed, authenticator.Check(Basic("someone-else:x")));
        Assert.Equal(AuthResult.Invalid, authenticator.Check("Bearer s3cret-tokeN"));
        Assert.Equal(AuthResult.Invalid, authenticator.Check("Bearer s3cret-token-longer"));
        Assert.Equal(AuthResult.Invalid, authenticator.Check("Bearer y"));
        Assert.Equal(AuthResult.Invalid, authenticator.Check(Basic("s3cret-token")));
        Assert.Equal(AuthResult.Invalid, authenticator.Check(Basic("s3cret-token:")));
        Assert.Equal(AuthResult.Invalid, authenticator.Check("Digest s3cret-token"));
        Assert.Equal(AuthResult.Invalid, authenticator.Check("s3cret-token"));
    }

    /// <summary>The HTTP/1.1 door's check, on the field value's bytes as it read them, decides as the check on text does.</summary>
    [Fact]
    public void The_check_on_latin1_bytes_decides_as_the_check_on_text()
    {
        _fixture.Write("s3cret-token\nx\n");
        using TokenFile tokens = _fixture.Open();
        var authenticator = new ProxyAuthenticator(tokens);

        string[] headers =
        [
            "", "  ", "Bearer s3cret-token", "bearer x", "Bearer   x", Basic("any:s3cret-token"), Basic("someone-else:x"),
            "Bearer s3cret-tokeN", "Bearer s3cret-tok\u00e9n", Basic("s3cret-token"), "Digest s3cret-token", "s3cret-token",
        ];
        foreach (var header in headers)
        {
            Assert.Equal(authenticator.Check(header), authenticator.CheckLatin1(Encoding.Latin1.GetBytes(header)));
        }
        Assert.Equal(AuthResult.Allowed, authenticator.CheckLatin1("Bearer x"u8));
        Assert.Equal(AuthResult.Missing, authenticator.CheckLatin1([]));
        Assert.Equal(AuthResult.Allowed, ProxyAuthenticator.None.CheckLatin1("garbage"u8));
    }

    [Fact]
    public void Follows_the_token_file_as_it_changes()
    {
        _fixture.Write("before\n");
        using TokenFile tokens = _fixture.Open();
        var authenticator = new ProxyAuthenticator(tokens);

        _fixture.ReplaceByRename("after\n");
        _fixture.Tick();
        Assert.Equal(AuthResult.Invalid, authenticator.Check("Bearer before"));
        Assert.Equal(AuthResult.Allowed, authenticator.Check("Bearer after"));
    }

    [Fact]
    public void Challenge_offers_both_schemes() =>
        Assert.Equal("Bearer realm=\"passage\", Basic realm=\"passage\"", ProxyAuthenticator.Challenge);
}
