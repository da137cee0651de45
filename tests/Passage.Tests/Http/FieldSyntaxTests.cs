using Passage.Http;

namespace Passage.Tests.Http;

public sealed class FieldSyntaxTests
{
    [Fact]
    public void A_list_s_members_are_split_at_commas_without_the_whitespace_around_them()
    {
        Assert.Equal(["gzip", "chunked"], FieldSyntax.ListMembers(" gzip ,, chunked,"));
        Assert.Empty(FieldSyntax.ListMembers((string?)null));
        Assert.Empty(FieldSyntax.ListMembers(" , "));
    }

    /// <summary>
    /// RFC 9110 §5.6.4: a comma within a quoted string is part of the member it is in. Split at every comma, a TE of
    /// <c>x;p=", trailers, "</c> read as asking for trailers.
    /// </summary>
    [Theory]
    [InlineData("x;p=\", trailers, \"", new[] { "x;p=\", trailers, \"" })]
    [InlineData("gzip;note=\"a, b\", chunked", new[] { "gzip;note=\"a, b\"", "chunked" })]
    [InlineData("a;p=\"x\\\", y\", b", new[] { "a;p=\"x\\\", y\"", "b" })]
    [InlineData("a;p=\"x\\\\\", b", new[] { "a;p=\"x\\\\\"", "b" })]
    [InlineData("a, b;p=\"open, c", new[] { "a", "b;p=\"open, c" })]
    public void A_comma_in_a_quoted_string_does_not_end_its_member(string value, string[] members)
    {
        Assert.Equal(members, FieldSyntax.ListMembers(value));
    }
}
