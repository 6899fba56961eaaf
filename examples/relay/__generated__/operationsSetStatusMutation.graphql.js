/**
 * @generated SignedSource<<ac89f202a7af2634f2d54d31a60babcf>>
 * @lightSyntaxTransform
 * @nogrep
 */

/* eslint-disable */

'use strict';

var node = (function(){
var v0 = [
  {
    "defaultValue": null,
    "kind": "LocalArgument",
    "name": "status"
  }
],
v1 = [
  {
    "alias": null,
    "args": [
      {
        "kind": "Variable",
        "name": "status",
        "variableName": "status"
      }
    ],
    "concreteType": "User",
    "kind": "LinkedField",
    "name": "updateStatus",
    "plural": false,
    "selections": [
      {
        "alias": null,
        "args": null,
        "kind": "ScalarField",
        "name": "id",
        "storageKey": null
      },
      {
        "alias": null,
        "args": null,
        "kind": "ScalarField",
        "name": "status",
        "storageKey": null
      }
    ],
    "storageKey": null
  }
];
return {
  "fragment": {
    "argumentDefinitions": (v0/*: any*/),
    "kind": "Fragment",
    "metadata": null,
    "name": "operationsSetStatusMutation",
    "selections": (v1/*: any*/),
    "type": "Mutation",
    "abstractKey": null
  },
  "kind": "Request",
  "operation": {
    "argumentDefinitions": (v0/*: any*/),
    "kind": "Operation",
    "name": "operationsSetStatusMutation",
    "selections": (v1/*: any*/)
  },
  "params": {
    "cacheID": "1fcb5dff16e1f226892a000f30063a50",
    "id": null,
    "metadata": {},
    "name": "operationsSetStatusMutation",
    "operationKind": "mutation",
    "text": "mutation operationsSetStatusMutation(\n  $status: String!\n) {\n  updateStatus(status: $status) {\n    id\n    status\n  }\n}\n"
  }
};
})();

node.hash = "557ffa98f3c5ee3d109d1fb2c0ebeb0b";

export default node;
