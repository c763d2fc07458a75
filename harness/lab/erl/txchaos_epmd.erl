%% The distribution port lookup of a node in a txchaos lab cluster.
%%
%% Erlang asks epmd where a peer node listens; epmd would answer with the peer's
%% own port, and nodes would then bypass the Toxiproxy proxies between them. This
%% module answers with this node's proxy to that peer instead (TXCHAOS_DIST_PEERS,
%% "name=port;name=port", names without "@host"), and leaves everything else
%% (registering this node, other names) to erl_epmd.
-module(txchaos_epmd).
-export([start_link/0, register_node/2, register_node/3, port_please/2, port_please/3,
         listen_port_please/2, address_please/3, names/1]).

start_link() -> erl_epmd:start_link().
register_node(Name, Port) -> erl_epmd:register_node(Name, Port).
register_node(Name, Port, Family) -> erl_epmd:register_node(Name, Port, Family).
listen_port_please(Name, Host) -> erl_epmd:listen_port_please(Name, Host).
address_please(Name, Host, Family) -> erl_epmd:address_please(Name, Host, Family).
names(Host) -> erl_epmd:names(Host).

port_please(Name, Host) -> port_please(Name, Host, infinity).
port_please(Name, Host, Timeout) ->
    case lists:keyfind(to_list(Name), 1, peers()) of
        {_, Port} -> {port, Port, 6};
        false -> erl_epmd:port_please(Name, Host, Timeout)
    end.

peers() ->
    [{N, list_to_integer(P)} || Pair <- string:tokens(os:getenv("TXCHAOS_DIST_PEERS", ""), ";"),
                                [N, P] <- [string:tokens(Pair, "=")]].

to_list(Name) when is_atom(Name) -> atom_to_list(Name);
to_list(Name) -> Name.
