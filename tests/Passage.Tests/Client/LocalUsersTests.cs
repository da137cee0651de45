using System.Text;
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
        Assert.Equal(admitted, LocalUsers.Admits(Users, Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(password)));

    /// <summary>
    /// A name as it came is its bytes: one that is not UTF-8 is no one's, not even the user's whose name its bytes would
    /// be read as with each bad sequence replaced.
    /// </summary>
    [Fact]
    public void A_name_that_is_not_utf8_is_no_ones()
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal) { ["\uFFFD"] = "x" };
        Assert.True(LocalUsers.Admits(users, "\uFFFD"u8, "x"u8));
        Assert.False(LocalUsers.Admits(users, [0xFF], "x"u8));
    }

    /// <summary>
    /// Passwords are hashed padded to RFC 1929's 255 bytes, so that the work is the same for every configured one and for an
    /// unknown name's stand-in; a longer one (a library's, an HTTP Basic attempt) as it is, under another tag: an attempt
    /// whose bytes are a password's padded form (its length, it, zeros) is not that password.
    /// </summary>
    [Fact]
    public void Passwords_of_every_length_are_told_apart_and_a_padded_form_is_not_the_password()
    {
        var atLimit = new string('p', 255);
        var beyond = new string('q', 300);
        var users = new Dictionary<string, string>(StringComparer.Ordinal) { ["alice"] = "won:der", ["bob"] = atLimit, ["carol"] = beyond };
        Assert.True(LocalUsers.Admits(users, "bob"u8, Encoding.UTF8.GetBytes(atLimit)));
        Assert.False(LocalUsers.Admits(users, "bob"u8, Encoding.UTF8.GetBytes(atLimit + "p")));
        Assert.False(LocalUsers.Admits(users, "bob"u8, Encoding.UTF8.GetBytes(atLimit[1..])));
        Assert.True(LocalUsers.Admits(users, "carol"u8, Encoding.UTF8.GetBytes(beyond)));
        Assert.False(LocalUsers.Admits(users, "carol"u8, Encoding.UTF8.GetBytes(beyond[1..])));
        var padded = new byte[256];
        padded[0] = 7;
        "won:der"u8.CopyTo(padded.AsSpan(1));
        Assert.False(LocalUsers.Admits(users, "alice"u8, padded));
        Assert.False(LocalUsers.Admits(users, "alice"u8, [1, .. padded]));
        Assert.True(LocalUsers.Admits(users, "alice"u8, "won:der"u8));
    }

    /// <summary>Users are found by name in any dictionary, whatever its kind, and whatever the name's length.</summary>
    [Fact]
    public void Users_are_found_in_any_dictionary_and_by_a_long_name()
    {
        var longName = new string('\u00e9', 300);
        var users = new Dictionary<string, string>(StringComparer.Ordinal) { ["alice"] = "won:der", [longName] = "p" };
        foreach (IReadOnlyDictionary<string, string> kind in new IReadOnlyDictionary<string, string>[] { users, new SortedDictionary<string, string>(users, StringComparer.Ordinal) })
        {
            Assert.True(LocalUsers.Admits(kind, "alice"u8, "won:der"u8));
            Assert.False(LocalUsers.Admits(kind, "alice"u8, "won:de"u8));
            Assert.True(LocalUsers.Admits(kind, Encoding.UTF8.GetBytes(longName), "p"u8));
            Assert.False(LocalUsers.Admits(kind, Encoding.UTF8.GetBytes(longName[1..]), "p"u8));
        }
    }

    /// <summary>
    /// Checking a name and password as they came allocates nothing: no string of the password, nor of the name where the
    /// dictionary is looked up by its characters (the configuration's).
    /// </summary>
    [Fact]
    public void Checking_bytes_allocates_nothing()
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal) { ["alice"] = "won:der" };
        Assert.True(LocalUsers.Admits(users, "alice"u8, "won:der"u8));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var admitted = LocalUsers.Admits(users, "alice"u8, "won:der"u8);
        var refused = LocalUsers.Admits(users, "carol"u8, "won:der"u8);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(admitted);
        Assert.False(refused);
    }

    /// <summary>The password an unknown name is compared with matches, and the name is still refused.</summary>
    [Fact]
    public void An_unknown_name_is_refused_even_with_the_password_it_is_compared_with()
    {
        var unknownUserPassword = Encoding.UTF8.GetBytes(LocalUsers.UnknownUserPassword);
        Assert.False(LocalUsers.Admits(Users, "carol"u8, unknownUserPassword));
        Assert.False(LocalUsers.Admits(new Dictionary<string, string>(), ""u8, unknownUserPassword));
    }
}
