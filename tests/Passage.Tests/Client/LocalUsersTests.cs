using Passage.Client;

namespace Passage.Tests.Client;

/// <summary>
/// Which user name and password pairs a local proxy admits. An unknown name's password is compared with a fixed one, so
/// that a refusal costs the same whichever part was wrong; only what is admitted can be shown here, not the time it takes.
/// </summary>
public sealed class LocalUsersTests
{
    private static readonly Dictionary<string, string> Users = new() { ["alice"] = "won:der", ["bob"] = "" };

    [Theory]
    [InlineData("alice", "won:der", true)]
    [InlineData("bob", "", true)]
    [InlineData("alice", "wonder", false)]
    [InlineData("alice", "", false)]
    [InlineData("Alice", "won:der", false)]
    [InlineData("carol", "won:der", false)]
    [InlineData("carol", "", false)]
    public void Only_a_known_name_with_its_own_password_is_admitted(string user, string password, bool admitted) =>
        Assert.Equal(admitted, LocalUsers.Admits(Users, user, password));

    /// <summary>The password an unknown name is compared with matches, and the name is still refused.</summary>
    [Fact]
    public void An_unknown_name_is_refused_even_with_the_password_it_is_compared_with()
    {
        Assert.False(LocalUsers.Admits(Users, "carol", LocalUsers.UnknownUserPassword));
        Assert.False(LocalUsers.Admits(new Dictionary<string, string>(), "", LocalUsers.UnknownUserPassword));
    }
}
