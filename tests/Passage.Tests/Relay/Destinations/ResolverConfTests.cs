using System.Net;
using Passage.Relay.Destinations;

namespace Passage.Tests.Relay.Destinations;

/// <summary>resolv.conf and nsswitch.conf read the way the C library reads them.</summary>
public sealed class ResolverConfTests
{
    [Fact]
    public void Servers_search_and_options_are_read_and_the_rest_skipped()
    {
        var conf = ResolverConf.Parse("""
            # generated
            ; also a comment
            nameserver 10.0.0.2
            nameserver fe80::1%lo
            nameserver not-an-address
            domain old.example
            search corp.example. lab.example
            options ndots:2 timeout:3 attempts:4 rotate edns0 no-aaaa
            sortlist 130.155.160.0/255.255.240.0
            """);

        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.2"), 53), new IPEndPoint(IPAddress.Parse("fe80::1%lo"), 53)], conf.Servers);
        Assert.Equal(["corp.example", "lab.example"], conf.Search);
        Assert.Equal(2, conf.Ndots);
        Assert.Equal(TimeSpan.FromSeconds(3), conf.Timeout);
        Assert.Equal(4, conf.Attempts);
        Assert.True(conf.NoAaaa);
    }

    [Fact]
    public void Without_servers_the_local_one_is_asked_with_the_c_librarys_defaults()
    {
        var conf = ResolverConf.Parse("search a.example\n");
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 53)], conf.Servers);
        Assert.Equal(1, conf.Ndots);
        Assert.Equal(TimeSpan.FromSeconds(5), conf.Timeout);
        Assert.Equal(2, conf.Attempts);
        Assert.False(conf.NoAaaa);
        Assert.Equal(new ResolverConf().Servers, ResolverConf.Load("/nonexistent/resolv.conf").Servers);
    }

    [Fact]
    public void At_most_three_servers_and_options_within_the_c_librarys_bounds()
    {
        var conf = ResolverConf.Parse("nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\noptions ndots:99 timeout:0 attempts:50\n");
        Assert.Equal(3, conf.Servers.Count);
        Assert.Equal(15, conf.Ndots);
        Assert.Equal(TimeSpan.FromSeconds(1), conf.Timeout);
        Assert.Equal(5, conf.Attempts);
    }

    [Fact]
    public void A_keyword_counts_only_at_the_start_of_its_line()
    {
        var conf = ResolverConf.Parse(" nameserver 10.0.0.9\n\tsearch x.example\nnameserver 10.0.0.2\n");
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.2"), 53)], conf.Servers);
        Assert.Empty(conf.Search);
    }

    [Fact]
    public void The_environment_overrides_the_file_and_the_host_names_domain_is_the_search_list_by_default()
    {
        var fromHost = ResolverConf.Read("nameserver 10.0.0.2\n", localDomain: null, resOptions: null, hostName: "box.corp.example");
        Assert.Equal(["corp.example"], fromHost.Search);
        Assert.Empty(ResolverConf.Read("", null, null, "box").Search);

        var fromFile = ResolverConf.Read("search lab.example\noptions ndots:3\n", null, null, "box.corp.example");
        Assert.Equal(["lab.example"], fromFile.Search);

        var fromEnvironment = ResolverConf.Read("search lab.example\noptions ndots:3\n", "env.example other.example", "ndots:2 attempts:1", "box.corp.example");
        Assert.Equal(["env.example", "other.example"], fromEnvironment.Search);
        Assert.Equal(2, fromEnvironment.Ndots);
        Assert.Equal(1, fromEnvironment.Attempts);
    }

    [Fact]
    public void Settings_outside_what_a_resolver_can_use_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new ResolverConf { Servers = [] });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResolverConf { Timeout = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResolverConf { Timeout = TimeSpan.FromDays(1) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResolverConf { Attempts = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResolverConf { Ndots = -1 });
    }

    [Theory]
    [InlineData("db", 1, "db.a.example db.b.example db")]
    [InlineData("db.internal", 1, "db.internal db.internal.a.example db.internal.b.example")]
    [InlineData("db.internal", 2, "db.internal.a.example db.internal.b.example db.internal")]
    [InlineData("db.internal.", 5, "db.internal")]
    public void Candidates_follow_ndots_and_the_search_list(string name, int ndots, string expected)
    {
        var conf = new ResolverConf { Search = ["a.example", "b.example"], Ndots = ndots };
        Assert.Equal(expected.Split(' '), conf.Candidates(name));
    }

    [Theory]
    [InlineData("hosts: files dns\n", true)]
    [InlineData("passwd: files\nhosts:\tfiles   dns # comment\n", true)]
    [InlineData("hosts: files [NOTFOUND=return] dns\n", false)]
    [InlineData("hosts: files dns [!UNAVAIL=return]\n", true)]
    [InlineData("hosts: files mdns4_minimal [NOTFOUND=return] dns\n", false)]
    [InlineData("hosts: files resolve [!UNAVAIL=return] dns myhostname\n", false)]
    [InlineData("hosts: dns files\n", false)]
    [InlineData("passwd: files\n", false)]
    [InlineData(null, false)]
    public void Only_files_then_dns_lets_the_relay_answer_as_getaddrinfo_would(string? nsswitch, bool expected) =>
        Assert.Equal(expected, ResolverConf.NameServiceIsFilesThenDns(nsswitch));

    [Fact]
    public void The_hosts_file_gives_every_address_of_a_name_in_file_order()
    {
        var names = HostsFile.Parse("127.0.0.1 localhost\n10.0.0.5 db db.lab. # the db\nbogus db\n::1 localhost ip6-localhost\n10.0.0.6 DB\n");
        Assert.Equal([IPAddress.Parse("127.0.0.1"), IPAddress.IPv6Loopback], names["LOCALHOST"]);
        Assert.Equal([IPAddress.Parse("10.0.0.5"), IPAddress.Parse("10.0.0.6")], names["db"]);
        Assert.Equal([IPAddress.Parse("10.0.0.5")], names["db.lab"]);
    }
}
